import { describe, expect, it } from 'vitest';
import { describeSeeds, replayable, seedsToRun } from '../simulation/chaos.js';
import { MultiSim } from './multi-sim.js';

const FILE = 'tests/multi/multi-raft.test.ts';

/**
 * One seeded run: groups over a few processes under loss, duplication, partitions and
 * crash/restart of whole processes, groups created and removed meanwhile, leaders rebalanced
 * now and then; then the faults stop, every process comes back, the clients finish and the
 * groups go idle.
 */
async function faultRun(seed: number, processes: number, groups: number) {
  const sim = new MultiSim({ seed, processes, groups, network: { loss: 0.03, duplication: 0.03, maxDelay: 8 } });
  const r = sim.random;
  let faults = 0;
  for (let t = 0; t < 2_500; t++) {
    await sim.step(true);
    // Leadership transfers under the faults too.
    if (t % 400 === 399) for (const p of sim.processes.values()) p.host?.balanceLeaders();
    const x = r();
    if (x < 0.004) {
      const victim = 1 + Math.floor(r() * processes);
      const y = r();
      faults++;
      if (y < 0.3) sim.network.isolate(victim);
      else if (y < 0.5) sim.network.heal();
      else if (y < 0.75) sim.crash(victim);
      else sim.restart(victim);
    } else if (x < 0.005) {
      sim.createGroup();
    } else if (x < 0.0055) {
      const live = [...sim.groups.values()].filter((g) => !g.removed);
      if (live.length > 2) await sim.removeGroup(live[Math.floor(r() * live.length)]!.id);
    }
  }
  sim.network.heal();
  sim.network.setFaults({ loss: 0, duplication: 0 });
  for (let id = 1; id <= processes; id++) sim.restart(id);
  const settled = () => [...sim.groups.values()].every((g) => g.removed || g.clients.every((c) => c.settled));
  for (let t = 0; t < 2_000 && !settled(); t++) await sim.step(false);
  // Idle: every group quiesces on every member.
  for (let t = 0; t < 1_000; t++) await sim.step(false);
  const { ops, unknown } = sim.verify();
  const hosts = [...sim.processes.values()].map((p) => p.host!);
  const groupsLive = [...sim.groups.values()].filter((g) => !g.removed);
  const loud = groupsLive.flatMap((g) => g.members.filter((m) => !sim.processes.get(m)!.host!.isQuiescent(g.id)));
  if (loud.length > 0) throw new Error(`seed ${seed}: not every group quiesced: ${JSON.stringify(loud)}`);
  return {
    ops,
    unknown,
    faults,
    groups: sim.groups.size,
    stats: hosts.map((h) => h.stats),
    trace: JSON.stringify([sim.network.stats, hosts.map((h) => h.stats), groupsLive.map((g) => g.history)]),
  };
}

describe('multi-raft: many groups over one simulated network of processes', () => {
  for (const [processes, groups, offset] of [
    [3, 6, 40_001],
    [5, 8, 41_001],
  ] as const) {
    it(`${groups} groups on ${processes} processes: every group's invariants after every step, every history linearizable`, async () => {
      const seeds = seedsToRun(2, offset, 1);
      console.log(describeSeeds(seeds, FILE));
      let ops = 0;
      let unknown = 0;
      for (const seed of [...seeds.fixed, ...seeds.fresh]) {
        const r = await replayable(seed, FILE, () => faultRun(seed, processes, groups));
        ops += r.ops;
        unknown += r.unknown;
      }
      console.log(`multi-raft ${processes} processes: ${ops} operations checked, ${unknown} with unknown outcome`);
      expect(ops).toBeGreaterThan(100);
    }, 120_000);
  }

  it('a seed replays exactly: the same seed gives the same messages, stats and histories', async () => {
    const a = await faultRun(40_001, 3, 4);
    const b = await faultRun(40_001, 3, 4);
    expect(a.trace).toBe(b.trace);
    expect(a.faults).toBeGreaterThan(0);
  }, 60_000);
});
