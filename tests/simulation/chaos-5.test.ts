import { describe, it } from 'vitest';
import { chaosRun, describeSeeds, replayable, seedsToRun } from './chaos.js';

const FILE = 'tests/simulation/chaos-5.test.ts';

describe('randomized simulation, 5 replicas', () => {
  it('keeps every Raft invariant under partitions, crashes, loss, duplication and reordering', async () => {
    let steps = 0;
    let committed = 0;
    let reads = 0;
    let changes = 0;
    let transfers = 0;
    const seeds = seedsToRun(100, 10_001);
    console.log(describeSeeds(seeds, FILE));
    const all = [...seeds.fixed, ...seeds.fresh];
    for (const seed of all) {
      // chaosRun asserts every invariant after every step, and that all replicas end with one history.
      const result = await replayable(seed, FILE, () => chaosRun(seed, 5));
      steps += result.steps;
      committed += result.committed;
      reads += result.reads;
      changes += result.changes;
      transfers += result.transfers;
    }
    console.log(
      `5 replicas: ${all.length} seeds, ${steps} steps, ${committed} entries committed, ${reads} linearizable reads, ${changes} membership changes and ${transfers} leadership transfers completed`,
    );
  }, 300_000);
});
