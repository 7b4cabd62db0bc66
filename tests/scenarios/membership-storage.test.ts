// Membership is part of what a Storage keeps: once a configuration has been saved (a
// configuration entry, or a snapshot's members), a restarted replica takes its membership from
// storage, never from `peerIds` (API.md, Storage). Issue 9, item 1.
import { describe, expect, it } from 'vitest';
import { CorruptStateError } from '../../src/index.js';
import type { CoreSnapshot, Entry } from '../../src/core/message.js';
import { NamedFieldsStorage } from '../helpers/named-fields-storage.js';
import { PaperReplica, RecordingStorage, entry, wholeSnapshot, type D, type T } from '../helpers/paper-harness.js';
import { Simulation } from '../helpers/simulation.js';

const ALL = [1, 2, 3, 4, 5];

describe('membership survives restarts through the storage', () => {
  // The storage is user-written and keeps exactly the fields the Storage types name.
  it(
    'a cluster grown from 3 to 5, its configuration entries compacted, restarts with its original options ' +
      'and 5 voters; 3 of the 5 elect and serve a write',
    async () => {
      const storage = (): NamedFieldsStorage<T, D> => new NamedFieldsStorage<T, D>();
      const sim = new Simulation({ size: 3, seed: 23, snapshotDelta: 5, storage });
      await sim.stableLeader();
      for (const id of [4, 5]) {
        sim.add(
          id,
          ALL.filter((p) => p < id),
          true,
        );
        expect(await sim.outcome(sim.leader()!.replica.addMember(id), 3000)).toBe('resolved');
      }
      const configIndex = sim.core(sim.leader()!.id).membership.lastIndex;
      await sim.write(
        ALL,
        Array.from({ length: 15 }, (_, i) => `w${i}`),
      );
      await sim.run(200); // the last snapshots reach the storage
      for (const id of ALL) {
        const saved = await sim.node(id).storage.load();
        expect(saved.snapshot?.lastIncludedIndex, `replica ${id}`).toBeGreaterThan(configIndex);
        expect(saved.snapshot?.members, `replica ${id}`).toEqual(ALL);
        expect(
          saved.entries.filter((e) => e.config),
          `replica ${id}`,
        ).toEqual([]);
      }
      for (const id of ALL) sim.crash(id);
      for (const id of ALL) sim.restart(id); // with the peerIds and join they were started with
      await sim.step();
      for (const id of ALL) {
        expect(sim.core(id).membership.voters, `replica ${id}`).toEqual(ALL);
        expect(sim.node(id).memberships.at(-1), `replica ${id}`).toEqual(ALL);
      }
      // Two of the original three stay down: the other three are a majority of five.
      sim.crash(1);
      sim.crash(2);
      const leader = await sim.stableLeader(5000, [3, 4, 5]);
      expect([3, 4, 5]).toContain(leader.id);
      await sim.write([3, 4, 5], ['after-restart']);
    },
  );

  it('a snapshot installed without members is saved with the configuration it leaves in effect', async () => {
    // A leader's seeded snapshot (getSnapshot) carries no members; it covers our configuration entry.
    const config: Entry<T> = { ...entry(2, 1, 'noop'), kind: 'config', config: [1, 2, 3, 4] };
    const r = await PaperReplica.create({ state: { term: 1, entries: [entry(1, 1), config] } });
    expect(r.raft.membership.voters).toEqual([1, 2, 3, 4]);
    const seeded = { lastIncludedIndex: 5, lastIncludedTerm: 1, data: { count: 5, hash: 5 } };
    await r.deliver([wholeSnapshot(2, 2, seeded)]);
    expect((await r.storage.state()).snapshot?.members).toEqual([1, 2, 3, 4]);
    const again = await r.restart();
    expect(again.raft.membership.voters).toEqual([1, 2, 3, 4]);
    expect(again.cluster.memberships.at(-1)).toEqual([1, 2, 3, 4]);
  });
});

describe('the loaded-state check covers the membership fields', () => {
  const snap = (members: unknown): CoreSnapshot<D> => ({
    lastIncludedIndex: 1,
    lastIncludedTerm: 1,
    data: { count: 1, hash: 1 },
    members: members as number[],
  });
  const cases: [string, { snapshot?: CoreSnapshot<D>; entries?: Entry<T>[] }][] = [
    ['snapshot members that are not ids', { snapshot: snap(['1', '2']) }],
    ['an empty member list', { snapshot: snap([]) }],
    ['snapshot members that are not a list', { snapshot: snap({ 0: 1 }) }],
    ['a fractional member id', { snapshot: snap([1, 2.5]) }],
    ['a configuration entry without members', { entries: [{ ...entry(1, 1), kind: 'config', config: [] }] }],
    [
      'a configuration not of ids',
      { entries: [{ ...entry(1, 1), kind: 'config', config: [1, null] as unknown as number[] }] },
    ],
    ['members on an entry that is not a configuration', { entries: [{ ...entry(1, 1), config: [1] } as never] }],
    ['an unknown entry kind', { entries: [{ ...entry(1, 1), kind: 'nop' as 'noop' }] }],
  ];
  it.each(cases)('refuses %s with CorruptStateError', async (_, state) => {
    const storage = new RecordingStorage();
    await storage.inner.save({ hardState: { term: 1, votedFor: undefined }, ...state, append: state.entries });
    await expect(PaperReplica.create({ storage })).rejects.toBeInstanceOf(CorruptStateError);
  });
});
