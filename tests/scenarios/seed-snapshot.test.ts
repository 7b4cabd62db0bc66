import { describe, expect, it } from 'vitest';
import { MemoryStorage, Replica, type Cluster, type Snapshot } from '../../src/index.js';
import {
  RecordingStateMachine,
  type TestSnapshotData,
  type TestTransition,
} from '../helpers/recording-state-machine.js';

/** A state machine that keeps its own snapshot (as one persisting itself would). */
class SelfPersisting extends RecordingStateMachine {
  constructor(private readonly own: Snapshot<TestSnapshotData> | undefined) {
    super(1);
  }
  getSnapshot(): Snapshot<TestSnapshotData> | undefined {
    return this.own;
  }
}

const alone: Cluster<TestTransition, TestSnapshotData> = {
  sendMessage() {},
  receiveMessages: () => [],
  halt: () => false,
  registerLeader() {},
};

function replicaOf(
  sm: RecordingStateMachine,
  storage: MemoryStorage<TestTransition, TestSnapshotData>,
  clock: () => number,
) {
  return new Replica<TestTransition, TestSnapshotData>({
    id: 1,
    peerIds: [],
    cluster: alone,
    stateMachine: sm,
    noopTransition: { id: 'noop' },
    storage,
    heartbeatTimeout: 10,
    electionTimeoutRange: [20, 40],
    clock,
    random: () => 0,
  });
}

describe('API.md: getSnapshot seeds a replica whose storage holds no snapshot', () => {
  it('application resumes after the seed, the seed is saved, and setSnapshot is not called for it', async () => {
    let now = 0;
    const storage = new MemoryStorage<TestTransition, TestSnapshotData>();
    const sm = new SelfPersisting({ lastIncludedIndex: 5, lastIncludedTerm: 2, data: { count: 5, hash: 1234 } });
    sm.lastIndex = 5;
    const replica = replicaOf(sm, storage, () => now);
    for (; now < 100; now += 5) await replica.tick();
    expect(replica.status.role).toBe('leader');
    sm.submit({ id: 'after-seed' });
    await replica.tick();
    expect(sm.snapshotsSet).toBe(0);
    expect(sm.appliedIds).toEqual(['after-seed']);
    expect(sm.lastIndex).toBe(7); // 6 is the noop of the first term above the seed's
    expect(sm.violations).toEqual([]);
    const saved = await storage.load();
    expect(saved.snapshot?.lastIncludedIndex).toBe(5);
    expect(saved.entries.map((e) => e.index)).toEqual([6, 7]);

    // Restarted over that storage, the stored snapshot wins and is loaded with setSnapshot.
    const again = new SelfPersisting(undefined);
    const restarted = replicaOf(again, storage, () => now);
    await restarted.tick();
    expect(again.snapshotsSet).toBe(1);
    expect(again.hash).toBe(1234);
  });

  it('without a seed, a state machine that returns undefined starts from index 1', async () => {
    let now = 0;
    const sm = new SelfPersisting(undefined);
    const replica = replicaOf(sm, new MemoryStorage(), () => now);
    for (; now < 100; now += 5) await replica.tick();
    sm.submit({ id: 'x' });
    await replica.tick();
    expect(sm.lastIndex).toBe(2);
  });
});
