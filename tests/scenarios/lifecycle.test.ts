// The replica's lifecycle: stop(), halt() and storage failures settle every promise the replica
// handed out, and later calls reject at once. Hand-driven ticks on the LocalNetwork simulator.
import { describe, expect, it } from 'vitest';
import {
  CorruptStateError,
  InvalidOptionsError,
  MemoryStorage,
  Replica,
  ReplicaStoppedError,
  type Cluster,
  type StorageBatch,
} from '../../src/index.js';
import { RecordingStateMachine } from '../helpers/recording-state-machine.js';
import type { TestSnapshotData, TestTransition } from '../helpers/recording-state-machine.js';
import { ScenarioSimulation } from '../helpers/scenario-sim.js';
import { watch } from '../helpers/watch.js';

/** Lets every settled promise run its handlers (no timer, no tick). */
const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * A leader cut off from both followers, holding a read, a membership change and (unless
 * `transfer` is false: a leader hands over no transitions meanwhile) a transfer in the core, and
 * one more read queued.
 */
async function leaderWithPendingRequests(seed: number, transfer = true) {
  const sim = new ScenarioSimulation({ size: 3, seed });
  const leader = await sim.stableLeader(2_000);
  const followers = sim.ids.filter((id) => id !== leader.id);
  for (const f of followers) sim.crash(f);
  const r = leader.replica;
  const held = [r.readIndex(), r.addMember(4), ...(transfer ? [r.transferLeadership(followers[0]!)] : [])].map(watch);
  await sim.step(1); // hands them to the core, where they wait for answers that cannot come
  const queued = watch(leader.replica.readIndex()); // not yet handed over: no tick since
  await flush();
  for (const w of [...held, queued]) expect(w.outcome).toBe('pending');
  return { sim, leader, all: [...held, queued] };
}

class ClosableStorage extends MemoryStorage<TestTransition, TestSnapshotData> {
  closed = 0;
  /** While set, save() waits for it. */
  gate: Promise<void> | undefined;
  failWith: Error | undefined;
  override async save(batch: StorageBatch<TestTransition, TestSnapshotData>): Promise<void> {
    await this.gate;
    if (this.failWith) throw this.failWith;
    return super.save(batch);
  }
  async close(): Promise<void> {
    this.closed++;
  }
}

const quietCluster = (halt = () => false): Cluster<TestTransition, TestSnapshotData> => ({
  sendMessage() {},
  receiveMessages: () => [],
  halt,
  registerLeader() {},
});

function single(storage = new ClosableStorage(), options: { clock?: () => number; random?: () => number } = {}) {
  let now = 0;
  const sm = new RecordingStateMachine(1);
  const replica = new Replica<TestTransition, TestSnapshotData>({
    id: 1,
    peerIds: [],
    cluster: quietCluster(),
    stateMachine: sm,
    noopTransition: { id: 'noop' },
    heartbeatTimeout: 50,
    electionTimeoutRange: [150, 300],
    storage,
    clock: () => now,
    random: () => 0.5,
    tickInterval: 1,
    ...options,
  });
  return {
    replica,
    storage,
    sm,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

describe('stop()', () => {
  // Every pending readIndex, membership change and transfer; then the storage closes and later calls reject.
  it('rejects what is pending with ReplicaStoppedError, closes the storage; later calls reject', async () => {
    const { sim, leader, all } = await leaderWithPendingRequests(201);
    let closed = 0;
    (leader.storage as unknown as { close(): Promise<void> }).close = async () => {
      closed++;
    };
    await leader.replica.stop();
    await flush();
    for (const w of all) expect(w.outcome).toBeInstanceOf(ReplicaStoppedError);
    expect(closed).toBe(1);
    // Every later call rejects at once; stop() again resolves and closes nothing more.
    await expect(leader.replica.tick()).rejects.toBeInstanceOf(ReplicaStoppedError);
    await expect(leader.replica.start()).rejects.toBeInstanceOf(ReplicaStoppedError);
    const r = leader.replica;
    const later = [r.readIndex(), r.addMember(5), r.removeMember(2), r.transferLeadership(2)].map(watch);
    await flush();
    for (const w of later) expect(w.outcome).toBeInstanceOf(ReplicaStoppedError);
    await expect(leader.replica.stop()).resolves.toBeUndefined();
    expect(closed).toBe(1);
    expect(sim.violations).toEqual([]);
  });

  it('lets the tick in progress finish (its save completes) before it settles, closes and resolves', async () => {
    const { replica, storage, advance } = single();
    await replica.tick();
    advance(400); // the election timeout passes: the next tick campaigns, wins alone and saves
    let release!: () => void;
    storage.gate = new Promise((resolve) => {
      release = resolve;
    });
    const tick = watch(replica.tick());
    await flush();
    const stopped = watch(replica.stop());
    const late = watch(replica.readIndex());
    await flush();
    expect(tick.outcome).toBe('pending');
    expect(stopped.outcome).toBe('pending');
    expect(storage.closed).toBe(0);
    expect(late.outcome).toBeInstanceOf(ReplicaStoppedError); // at once: the replica is stopping
    release();
    await flush();
    await flush();
    expect(tick.outcome).toBe('resolved');
    expect(stopped.outcome).toBe('resolved');
    expect(storage.closed).toBe(1);
    expect((await storage.load()).term).toBe(1); // what the last tick saved is there
  });

  it('ends a running start(), which resolves', { timeout: 10_000 }, async () => {
    const { replica } = single(new ClosableStorage(), { clock: Date.now, random: Math.random });
    const running = watch(replica.start());
    await new Promise((resolve) => setTimeout(resolve, 20));
    const read = watch(
      new Promise<void>((resolve, reject) => {
        replica.readIndex().then(resolve, reject);
      }),
    );
    await replica.stop();
    await flush();
    expect(running.outcome).toBe('resolved');
    expect(read.outcome === 'resolved' || read.outcome instanceof ReplicaStoppedError).toBe(true);
  });

  it('settles requests made before the first tick', async () => {
    const { replica, storage } = single();
    const early = [replica.readIndex(), replica.addMember(2), replica.transferLeadership(2)].map(watch);
    await replica.stop();
    await flush();
    for (const w of early) expect(w.outcome).toBeInstanceOf(ReplicaStoppedError);
    expect(storage.closed).toBe(1);
  });
});

describe('start() returning on halt()', () => {
  it('rejects what is pending with ReplicaStoppedError; the replica has stopped for good', async () => {
    const { sim, leader, all } = await leaderWithPendingRequests(202);
    sim.crash(leader.id); // its cluster's halt() now returns true
    await expect(leader.replica.start()).resolves.toBeUndefined();
    await flush();
    for (const w of all) expect(w.outcome).toBeInstanceOf(ReplicaStoppedError);
    const later = watch(leader.replica.readIndex());
    await flush();
    expect(later.outcome).toBeInstanceOf(ReplicaStoppedError);
    await expect(leader.replica.tick()).rejects.toBeInstanceOf(ReplicaStoppedError);
  });
});

describe('a storage failure', () => {
  it('rejects every pending request with the storage error, and later requests at once', async () => {
    const { sim, leader, all } = await leaderWithPendingRequests(203, false);
    const error = new Error('disk on fire');
    const storage = leader.storage as unknown as { save: (b: unknown) => Promise<void> };
    storage.save = async () => {
      throw error;
    };
    leader.sm.submit({ id: 'x' }); // something to save
    await expect(leader.replica.tick()).rejects.toBe(error);
    await flush();
    for (const w of all) expect(w.outcome).toBe(error);
    const later = watch(leader.replica.addMember(7));
    await flush();
    expect(later.outcome).toBe(error);
    expect(sim.violations).toEqual([]);
  });

  it('at load: requests made before the first tick reject with the load error', async () => {
    const storage = new ClosableStorage();
    storage.load = async () => ({ term: -1, votedFor: undefined, snapshot: undefined, entries: [] });
    const { replica } = single(storage);
    const early = watch(replica.readIndex());
    await expect(replica.tick()).rejects.toBeInstanceOf(CorruptStateError);
    await flush();
    expect(early.outcome).toBeInstanceOf(CorruptStateError);
  });
});

describe('start() ending on an error thrown by user code', () => {
  it('rejects what is pending with that error', { timeout: 10_000 }, async () => {
    const { replica, sm } = single(new ClosableStorage(), { clock: Date.now, random: Math.random });
    const boom = new Error('state machine bug');
    sm.getPendingTransitions = () => {
      throw boom;
    };
    const read = watch(replica.readIndex());
    await expect(replica.start()).rejects.toBe(boom);
    await flush();
    // The first tick threw before the read reached the core; nothing is left to settle it but start().
    expect(read.outcome).toBe(boom);
  });
});

describe('random() outside [0, 1)', () => {
  for (const bad of [Number.NaN, 1, -0.1, 7]) {
    it(`(${bad}) stops the replica with InvalidOptionsError instead of never campaigning`, async () => {
      const { replica } = single(new ClosableStorage(), { random: () => bad });
      const read = watch(replica.readIndex());
      const error = await replica.tick().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(InvalidOptionsError);
      expect((error as Error).message).toMatch(/random\(\) must return a number in \[0, 1\)/);
      await expect(replica.tick()).rejects.toBe(error);
      await flush();
      expect(read.outcome).toBe(error);
    });
  }

  it('a valid random elects (control)', async () => {
    const { replica, advance } = single();
    await replica.tick();
    advance(400);
    await replica.tick();
    expect(replica.status.role).toBe('leader');
    const read = watch(replica.readIndex());
    await replica.tick();
    await flush();
    expect(read.outcome).toBe('resolved');
  });
});
