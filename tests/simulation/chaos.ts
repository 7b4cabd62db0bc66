import { randomInt } from 'node:crypto';
import { expect } from 'vitest';
import { Simulation, raftOf } from '../helpers/simulation.js';

/** The seeds of one chaos test: the fixed ones every build runs, and a fresh range new to this run. */
export interface Seeds {
  readonly fixed: number[];
  readonly fresh: number[];
}

/**
 * The seeds a run covers per cluster size: `base` fixed seeds from `offset` (TICKRAFT_SEEDS
 * changes how many), which every build repeats, plus TICKRAFT_FRESH_SEEDS (default
 * `freshDefault`) fresh consecutive seeds from a random start, so that each build also explores
 * runs no build tried before. TICKRAFT_SEED=n replays one seed alone, fixed or fresh, exactly.
 */
export function seedsToRun(base: number, offset: number, freshDefault = 10): Seeds {
  const one = process.env.TICKRAFT_SEED;
  if (one !== undefined) return { fixed: [Number(one)], fresh: [] };
  const count = Number(process.env.TICKRAFT_SEEDS ?? base);
  const freshCount = Number(process.env.TICKRAFT_FRESH_SEEDS ?? freshDefault);
  // Above every fixed range, and far below 2^53 so that every seed stays a safe integer.
  // TICKRAFT_FRESH_START replays a whole fresh range, as printed by describeSeeds.
  const start = Number(process.env.TICKRAFT_FRESH_START ?? 1_000_000 + randomInt(2 ** 40));
  return {
    fixed: Array.from({ length: count }, (_, i) => offset + i),
    fresh: Array.from({ length: freshCount }, (_, i) => start + i),
  };
}

/** The line a chaos test prints before it runs, so a fresh seed that fails can be replayed. */
export function describeSeeds(seeds: Seeds, file: string): string {
  const { fixed, fresh } = seeds;
  const range = (xs: number[]): string => (xs.length === 0 ? 'none' : `${xs[0]}..${xs.at(-1)}`);
  return (
    `${file}: fixed seeds ${range(fixed)}, fresh seeds ${range(fresh)}; ` +
    `replay one with TICKRAFT_SEED=<seed> npx vitest run ${file}`
  );
}

/** Runs one seed; a failure names the seed and the command that replays it. */
export async function replayable<R>(seed: number, file: string, run: () => Promise<R>): Promise<R> {
  try {
    return await run();
  } catch (error) {
    if (error instanceof Error) {
      error.message = `seed ${seed} (replay: TICKRAFT_SEED=${seed} npx vitest run ${file}): ${error.message}`;
    }
    throw error;
  }
}

export interface ChaosResult {
  steps: number;
  committed: number;
  elections: number;
  faults: number;
  reads: number;
  changes: number;
  transfers: number;
}

/**
 * One seeded run: a fault phase (partitions, crashes and restarts, some of them in the middle
 * of a save, loss, duplication,
 * reordering, clients submitting all along) with every invariant checked after every step,
 * then a healed phase in which a leader must appear and commit every new command in bounded
 * virtual time, and every replica must end with the same applied history.
 */
export async function chaosRun(seed: number, size: number): Promise<ChaosResult> {
  const pick = <X>(xs: X[], r: () => number): X => xs[Math.floor(r() * xs.length)]!;
  const setup = new Simulation({ size, seed }).random;
  const sim = new Simulation({
    size,
    seed,
    snapshotDelta: pick([0, 0, 7, 25], setup),
    maxEntriesPerMessage: pick([1, 3, 64], setup),
    // Budgets of a few bytes send each snapshot (about 30 characters of JSON) in several chunks.
    maxBytesPerMessage: pick([8, 100, 0], setup),
    maxInflightBytes: pick([16, 200, 0], setup),
    // Half the runs with §10.2.1: a leader's appends leave before its save, which a crash may cut short.
    leaderSendsBeforeSave: pick([false, true], setup),
    network: { loss: 0.05, duplication: 0.05, minDelay: 1, maxDelay: 10 },
  });
  const r = sim.random;
  let next = 0;
  let faults = 0;
  const submit = (): void => {
    const target = r() < 0.8 ? sim.leader() : sim.node(pick(sim.ids, r));
    target?.sm.submit({ id: `c${next++}` });
  };
  const ignore = (): void => {};
  let reads = 0;
  let changes = 0;
  let transfers = 0;
  const changed = (): void => {
    changes++;
  };
  const read = (): void => {
    // Any replica that believes it leads, a deposed one too: that is where a read could go wrong.
    const claimants = [...sim.nodes.values()].filter((n) => n.up && n.replica.status.role === 'leader');
    const leader = claimants.length > 0 ? pick(claimants, r) : undefined;
    if (!leader) return;
    // Linearizable reads: once resolved, the reader has applied everything any replica knew
    // committed when the read began.
    const committedBefore = Math.max(...[...sim.nodes.values()].map((n) => n.replica.status.commitIndex));
    const node = leader;
    const replica = node.replica;
    replica.readIndex().then(() => {
      reads++;
      const applied = replica.status.lastApplied;
      if (applied < committedBefore)
        sim.violations.push(
          `read on ${node.id} resolved at applied ${applied} < ${committedBefore} committed before it began`,
        );
    }, ignore);
  };
  const voters = (): number[] => {
    const l = sim.leader();
    return l ? [...raftOf(l.replica)!.membership.voters] : [];
  };
  const faultEnd = sim.now + 3_000;
  while (sim.now < faultEnd) {
    await sim.step();
    if (r() < 0.3) submit();
    if (r() < 0.05) read();
    if (r() > 0.04) continue;
    faults++;
    const x = r();
    if (x < 0.2) {
      const shuffled = [...sim.ids].sort(() => r() - 0.5);
      const cut = 1 + Math.floor(r() * (size - 1));
      sim.network.partition([shuffled.slice(0, cut), shuffled.slice(cut)]);
    } else if (x < 0.3) sim.network.isolate(pick(sim.ids, r));
    else if (x < 0.5) sim.network.heal();
    else if (x < 0.65) {
      const id = pick(sim.ids, r);
      if (r() < 0.5) sim.crashWhileSaving(id);
      else sim.crash(id);
    } else if (x < 0.75) sim.restart(pick(sim.ids, r));
    else if (x < 0.85) {
      // Membership: shrink to no fewer than 3 voters, or bring a removed replica back.
      const leader = sim.leader();
      const members = voters();
      const out = sim.ids.filter((id) => !members.includes(id));
      if (leader && out.length > 0 && r() < 0.5) leader.replica.addMember(pick(out, r)).then(changed, ignore);
      else if (leader && members.length > 3)
        leader.replica
          .removeMember(
            pick(
              members.filter((id) => id !== leader.id),
              r,
            ),
          )
          .then(changed, ignore);
    } else if (x < 0.9) {
      const leader = sim.leader();
      const members = voters().filter((id) => id !== leader?.id);
      if (leader && members.length > 0)
        leader.replica.transferLeadership(pick(members, r)).then(() => {
          transfers++;
        }, ignore);
    } else sim.network.setFaults({ loss: r() * 0.3, duplication: r() * 0.2, maxDelay: 1 + Math.floor(r() * 40) });
  }
  // Heal everything; a leader must emerge and make progress.
  sim.network.heal();
  sim.network.setFaults({ loss: 0, duplication: 0, maxDelay: 10 });
  for (const id of sim.ids) sim.restart(id);
  // Bring every removed replica back, one change at a time, so the whole cluster must agree.
  const changing = (): boolean =>
    [...sim.nodes.values()].some(
      (n) => (raftOf(n.replica) as unknown as { change?: object } | undefined)?.change !== undefined,
    );
  // The leader's configuration must also be committed, with an entry of its term: until then a
  // configuration entry left uncommitted in another log by a deposed leader (a removal, say) can
  // still win an election, and the replica it removes, never told, rightly stays out.
  const configurationCommitted = (): boolean => {
    const leader = sim.leader();
    const raft = leader && raftOf(leader.replica);
    return (
      raft !== undefined &&
      raft.membership.lastIndex <= raft.commitIndex &&
      raft.log.term(raft.commitIndex) === raft.term
    );
  };
  for (let end = sim.now + 20_000; sim.now < end;) {
    await sim.step();
    const leader = sim.leader();
    const missing = sim.ids.filter((id) => !voters().includes(id));
    if (missing.length === 0 && !changing() && configurationCommitted()) break;
    if (leader && missing.length > 0 && sim.steps % 20 === 0) leader.replica.addMember(missing[0]!).catch(ignore);
  }
  expect(voters().length, `seed ${seed}: removed replicas were not brought back`).toBe(size);
  // A leadership transfer still under way would abandon new commands: let it finish (it is bounded).
  await sim.runUntil(
    () =>
      [...sim.nodes.values()].every(
        (n) => (raftOf(n.replica) as unknown as { transfer?: unknown } | undefined)?.transfer === undefined,
      ),
    2_000,
    'transfers to finish',
  );
  const leader = await sim.stableLeader(10_000);
  const fresh = Array.from({ length: 5 }, (_, i) => ({ id: `final${i}` }));
  leader.sm.submit(...fresh);
  await sim.runUntil(
    () => fresh.every((t) => leader.sm.statusesOf(t.id).includes('applied')),
    3_000,
    'commands after healing',
  );
  const target = leader.replica.status.commitIndex;
  await sim.runUntil(
    () => [...sim.nodes.values()].every((n) => n.replica.status.lastApplied >= target),
    3_000,
    'every replica applying',
  );
  for (const t of fresh) expect(leader.sm.statusesOf(t.id)).toEqual(['queued', 'committed', 'applied']);
  // State Machine Safety at the end of the run: every replica applied the same history.
  const history = (n: { sm: { lastIndex: number; hash: number } }): string =>
    `${n.sm.lastIndex} entries, hash ${n.sm.hash}`;
  for (const n of sim.nodes.values()) {
    const what = `seed ${seed}: replica ${n.id} applied another history than leader ${leader.id}`;
    expect(history(n), what).toBe(history(leader));
  }
  sim.check();
  let elections = 0;
  for (const n of sim.nodes.values()) elections += n.replica.metrics.electionsStarted;
  return { steps: sim.steps, committed: target, elections, faults, reads, changes, transfers };
}
