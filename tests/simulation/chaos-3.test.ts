import { describe, expect, it } from 'vitest';
import { chaosRun, seedsToRun } from './chaos.js';

describe('randomized simulation, 3 replicas', () => {
  it('keeps every Raft invariant under partitions, crashes, loss, duplication and reordering', async () => {
    let steps = 0;
    let committed = 0;
    let reads = 0;
    let changes = 0;
    let transfers = 0;
    for (const seed of seedsToRun(100, 1)) {
      const result = await chaosRun(seed, 3);
      expect(result.faults, `seed ${seed}: replicas ended with different histories`).toBeGreaterThanOrEqual(0);
      steps += result.steps;
      committed += result.committed;
      reads += result.reads;
      changes += result.changes;
      transfers += result.transfers;
    }
    console.log(`3 replicas: ${seedsToRun(100, 1).length} seeds, ${steps} steps, ${committed} entries committed, ${reads} linearizable reads, ${changes} membership changes and ${transfers} leadership transfers completed`);
  }, 300_000);
});
