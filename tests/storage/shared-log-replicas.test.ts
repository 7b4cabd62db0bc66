// Replicas on SharedLog: two Raft groups of three members, each "process" (member id) keeping
// both groups in one log, run side by side in deterministic simulations; then every process
// crashes, the logs are reopened from disk, and both groups go on with everything committed.
import { describe, expect, it } from 'vitest';
import type { Storage, StorageBatch } from '../../src/core/storage.js';
import { SharedLog } from '../../src/file.js';
import type { TestSnapshotData, TestTransition } from '../helpers/recording-state-machine.js';
import { Simulation } from '../helpers/simulation.js';
import { tempDir } from './file-harness.js';

type Log = SharedLog<TestTransition, TestSnapshotData>;

describe('replicas of two groups on one SharedLog per process', () => {
  it('commit through the shared logs and keep everything across a crash of every process', async () => {
    const dirs = await Promise.all([1, 2, 3].map(() => tempDir('tickraft-shared-replicas-')));
    const open = async (i: number): Promise<Log> => {
      const log: Log = new SharedLog(dirs[i]!.dir, { fsync: false });
      await log.open();
      return log;
    };
    const logs = await Promise.all([0, 1, 2].map(open));
    // Member m of group g keeps its state in logs[m - 1] under id g; a restarted member loads from
    // whatever log is open then.
    const storageOf = (g: number) => {
      let member = 0;
      return (): Storage<TestTransition, TestSnapshotData> => {
        const i = member++;
        let handle = logs[i]!.group(g);
        return {
          load: () => (handle = logs[i]!.group(g)).load(),
          save: (batch: StorageBatch<TestTransition, TestSnapshotData>) => handle.save(batch),
        };
      };
    };
    const groups = [1, 2].map(
      (g) => new Simulation({ size: 3, seed: 40 + g, snapshotDelta: 5, storage: storageOf(g) }),
    );
    try {
      await Promise.all(groups.map((sim) => sim.stableLeader()));
      const first = [1, 2].map((g) => Array.from({ length: 8 }, (_, i) => `g${g}-${i}`));
      await Promise.all(groups.map((sim, k) => sim.write([1, 2, 3], first[k]!)));
      for (const log of logs) expect(log.stats.saves).toBeGreaterThan(0);

      for (const sim of groups) for (const id of [1, 2, 3]) sim.crash(id);
      for (let i = 0; i < 3; i++) {
        await logs[i]!.close();
        logs[i] = await open(i);
        expect(logs[i]!.groupIds()).toEqual([1, 2]);
      }
      for (const sim of groups) for (const id of [1, 2, 3]) sim.restart(id);
      await Promise.all(groups.map((sim) => sim.stableLeader()));
      const more = [1, 2].map((g) => [`g${g}-after`]);
      await Promise.all(groups.map((sim, k) => sim.write([1, 2, 3], more[k]!)));
      // Every member holds the whole history again, from its log and snapshots: nothing lost.
      for (const [k, sim] of groups.entries()) {
        const ids = [...first[k]!, ...more[k]!];
        await sim.runUntil(() => [1, 2, 3].every((id) => sim.node(id).sm.count === ids.length), 3_000, 'caught up');
        // The members that restored a snapshot and those that replayed the log hold one history.
        const hash = sim.node(1).sm.hash;
        for (const id of [2, 3]) expect(sim.node(id).sm.hash, `group ${k + 1}, member ${id}`).toBe(hash);
      }
    } finally {
      for (const log of logs) await log.close();
      for (const d of dirs) await d.remove();
    }
  });
});
