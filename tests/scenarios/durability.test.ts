import { describe, expect, it } from 'vitest';
import { raftOf } from '../helpers/simulation.js';
import { ScenarioSimulation, commands } from '../helpers/scenario-sim.js';

describe('restart of every replica at once', () => {
  for (const snapshotDelta of [0, 10]) {
    it(`committed data survives, a leader is elected, all re-apply the same history, terms never go back (snapshotDelta ${snapshotDelta})`, async () => {
      const sim = new ScenarioSimulation({ size: 5, seed: 71, snapshotDelta });
      const first = await sim.stableLeader(1_500);
      const before = commands('c', 25);
      first.sm.submit(...before);
      await sim.untilApplied(
        sim.ids,
        before.map((c) => c.id),
        1_000,
      );
      // A few more, crashed mid-flight: whatever was committed must survive, nothing else may appear.
      first.sm.submit(...commands('late', 3));
      await sim.step();
      const terms = new Map(sim.ids.map((id) => [id, sim.node(id).replica.status.term]));
      const committed = Math.max(...sim.ids.map((id) => sim.node(id).replica.status.commitIndex));
      const history = first.sm.appliedIds.slice();
      expect(history).toEqual(before.map((c) => c.id));

      for (const id of sim.ids) sim.crash(id);
      await sim.run(100);
      for (const id of sim.ids) sim.restart(id);
      // Fresh state machines: nothing applied until a leader commits in its own term.
      for (const n of sim.nodes.values()) expect(n.sm.appliedIds).toEqual([]);
      await sim.step();
      for (const id of sim.ids)
        expect(sim.node(id).replica.status.term, `term of ${id} after restart`).toBeGreaterThanOrEqual(terms.get(id)!);

      const leader = await sim.stableLeader(2_000);
      expect(leader.replica.status.term).toBeGreaterThan(Math.max(...terms.values()));
      const after = commands('after', 3);
      leader.sm.submit(...after);
      await sim.untilApplied(
        sim.ids,
        after.map((c) => c.id),
        1_000,
      );
      await sim.run(200);
      const reference = leader.sm.appliedIds;
      expect(reference.slice(-3)).toEqual(after.map((c) => c.id));
      // What was applied before is a prefix of what is applied now, in the same order (with
      // snapshots the prefix comes back through setSnapshot; the simulation checks its hash index by index).
      if (snapshotDelta === 0) expect(reference.slice(0, history.length)).toEqual(history);
      expect(leader.sm.count).toBeGreaterThanOrEqual(history.length + 3);
      expect(leader.sm.count).toBeLessThanOrEqual(history.length + 6);
      for (const n of sim.nodes.values()) {
        expect(n.replica.status.commitIndex).toBeGreaterThanOrEqual(committed);
        if (snapshotDelta === 0) expect(n.sm.appliedIds, `replica ${n.id}`).toEqual(reference);
        expect(`${n.sm.lastIndex}:${n.sm.hash}:${n.sm.count}`).toBe(
          `${leader.sm.lastIndex}:${leader.sm.hash}:${leader.sm.count}`,
        );
        expect(n.replica.status.term).toBe(leader.replica.status.term);
        if (snapshotDelta > 0) expect(n.sm.snapshotsSet, `replica ${n.id} loads its stored snapshot`).toBe(1);
      }
    });
  }
});

describe('snapshots with lagging and crashed followers', () => {
  it('a crashed and a partitioned follower catch up through InstallSnapshot; logs stay bounded', async () => {
    const delta = 10;
    const sim = new ScenarioSimulation({ size: 5, seed: 81, snapshotDelta: delta });
    const leader = await sim.stableLeader(1_500);
    const [crashed, lagging] = sim.ids.filter((id) => id !== leader.id) as [number, number];
    // Crashed before it applied `delta` entries: its storage holds no snapshot of its own.
    sim.crash(crashed);
    sim.network.isolate(lagging);
    const cmds = commands('s', 100);
    for (let i = 0; i < cmds.length; i += 5) {
      leader.sm.submit(...cmds.slice(i, i + 5));
      await sim.step();
    }
    const rest = sim.ids.filter((id) => id !== crashed && id !== lagging);
    await sim.untilApplied(
      rest,
      cmds.map((c) => c.id),
      2_000,
    );
    expect(await sim.node(crashed).storage.load()).toMatchObject({ snapshot: undefined });
    expect(sim.node(lagging).replica.status.lastApplied).toBeLessThan(delta);

    sim.restart(crashed);
    sim.network.heal();
    const target = () => sim.leader()!.replica.status.commitIndex;
    await sim.runUntil(
      () => sim.leader() !== undefined && sim.ids.every((id) => sim.node(id).sm.lastIndex >= target()),
      3_000,
      'catching up',
    );
    await sim.run(300);
    const now = sim.leader()!;
    for (const id of [crashed, lagging]) {
      const n = sim.node(id);
      expect(n.sm.snapshotsSet, `setSnapshot on ${id}`).toBeGreaterThan(0);
      expect(n.replica.metrics.snapshotsInstalled, `snapshotsInstalled on ${id}`).toBeGreaterThan(0);
      // Caught up through the snapshot, not by replaying the whole log.
      expect(n.sm.appliedIds.length).toBeLessThan(50);
    }
    const state = `${now.sm.lastIndex}:${now.sm.hash}`;
    for (const n of sim.nodes.values()) {
      expect(`${n.sm.lastIndex}:${n.sm.hash}`, `state of ${n.id}`).toBe(state);
      expect(n.sm.count).toBe(100);
      const stored = await n.storage.load();
      expect(stored.snapshot, `stored snapshot of ${n.id}`).toBeDefined();
      expect(stored.snapshot!.lastIncludedIndex).toBeGreaterThan(now.sm.lastIndex - delta);
      expect(stored.entries.length, `stored entries of ${n.id}`).toBeLessThan(delta);
      const raft = raftOf(n.replica)!;
      expect(raft.log.lastIndex - raft.log.snapshotIndex).toBeLessThan(delta);
    }
    // Snapshots were created along the way by everyone who applied entries.
    for (const id of rest) expect(sim.node(id).replica.metrics.snapshotsCreated).toBeGreaterThanOrEqual(3);
  });
});
