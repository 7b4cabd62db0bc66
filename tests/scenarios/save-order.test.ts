// Saves under start() (issue 12): storage sees one save at a time, and nothing that depends on a
// batch leaves the process before that batch is durable, unless a leader opts in to §10.2.1.
// start() runs with a fixed clock and a storage that holds every save until the test releases
// or fails it; the test waits on setImmediate turns only, never on time.
import { describe, expect, it } from 'vitest';
import {
  MemoryStorage,
  Replica,
  ReplicaStoppedError,
  type Cluster,
  type Message,
  type StorageBatch,
} from '../../src/index.js';
import { RecordingStateMachine } from '../helpers/recording-state-machine.js';
import type { TestSnapshotData, TestTransition } from '../helpers/recording-state-machine.js';
import { watch } from '../helpers/watch.js';

type T = TestTransition;
type D = TestSnapshotData;

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Lets the replica run until `done()` holds; fails after 2,000 turns of the event loop. */
async function until(what: string, done: () => boolean): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    if (done()) return;
    await turn();
  }
  throw new Error(`never happened: ${what}`);
}

/** Holds every save until `release()` or `fail()`; records the batches in the order handed over. */
class GatedStorage extends MemoryStorage<T, D> {
  readonly batches: StorageBatch<T, D>[] = [];
  inFlight = 0;
  maxInFlight = 0;
  closed = 0;
  private readonly gates: { resolve: () => void; reject: (e: Error) => void }[] = [];

  override save(batch: StorageBatch<T, D>): Promise<void> {
    this.batches.push(batch);
    this.maxInFlight = Math.max(this.maxInFlight, ++this.inFlight);
    return new Promise<void>((resolve, reject) => this.gates.push({ resolve, reject })).then(
      async () => {
        await super.save(batch);
        this.inFlight--;
      },
      (e: unknown) => {
        this.inFlight--;
        throw e;
      },
    );
  }

  get waiting(): number {
    return this.gates.length;
  }

  release(): void {
    this.gates.shift()!.resolve();
  }

  fail(error: Error): void {
    this.gates.shift()!.reject(error);
  }

  async close(): Promise<void> {
    this.closed++;
  }
}

/** A replica on a cluster the test plays by hand: it hands over `inbox` and records what is sent. */
function harness(id: number, peerIds: number[], leaderSendsBeforeSave?: boolean) {
  const storage = new GatedStorage();
  const sm = new RecordingStateMachine(id);
  const sent: [number, Message<T, D>][] = [];
  const inbox: Message<T, D>[] = [];
  let now = 0;
  let clockReads = 0;
  const cluster: Cluster<T, D> = {
    sendMessage: (to, m) => sent.push([to, m]),
    receiveMessages: () => inbox.splice(0),
    halt: () => false,
    registerLeader() {},
  };
  const replica = new Replica<T, D>({
    id,
    peerIds,
    cluster,
    stateMachine: sm,
    noopTransition: { id: 'noop' },
    heartbeatTimeout: 50,
    electionTimeoutRange: [150, 300],
    storage,
    clock: () => (clockReads++, now),
    random: () => 0.5,
    tickInterval: 1,
    ...(leaderSendsBeforeSave === undefined ? {} : { leaderSendsBeforeSave }),
  });
  return {
    replica,
    storage,
    sm,
    sent,
    /** Whether the replica has loaded and ticked: its clock was read at start and by a tick. */
    ticked: () => clockReads >= 2,
    deliver(...ms: Message<T, D>[]) {
      inbox.push(...ms);
      replica.wake();
    },
    advance(ms: number) {
      now += ms;
      replica.wake();
    },
  };
}

/** An AppendEntries from leader 2 in term 1 carrying transition `id` at `index`. */
const append = (index: number, id: string): Message<T, D> => ({
  type: 'append',
  from: 2,
  term: 1,
  prevLogIndex: index - 1,
  prevLogTerm: index > 1 ? 1 : 0,
  entries: [{ index, term: 1, transition: { id }, kind: 'transition' }],
  leaderCommit: 0,
  round: 0,
});

const acks = (sent: [number, Message<T, D>][]): number[] =>
  sent.flatMap(([, m]) => (m.type === 'appendResponse' && m.success ? [m.index] : []));

describe('saves under start(): a follower', () => {
  it('acknowledges a batch only once it is durable, and saves the next only after it', async () => {
    const f = harness(1, [2, 3]);
    const running = watch(f.replica.start());
    f.deliver(append(1, 'a'));
    await until('the first batch is handed to storage', () => f.storage.waiting === 1);
    f.deliver(append(2, 'b')); // arrives while the first save is in flight
    for (let i = 0; i < 20; i++) await turn();
    expect(acks(f.sent)).toEqual([]); // nothing acknowledged before its save resolves
    expect(f.storage.batches).toHaveLength(1); // one save at a time: the second batch waits
    f.storage.release();
    await until('the second batch is handed to storage', () => f.storage.waiting === 1);
    expect(acks(f.sent)).toEqual([1]); // the first is acknowledged; the second is not yet durable
    expect(f.storage.batches[1]!.append!.map((e) => e.index)).toEqual([2]);
    f.storage.release();
    await until('the second acknowledgement', () => acks(f.sent).length === 2);
    expect(acks(f.sent)).toEqual([1, 2]);
    expect(f.storage.maxInFlight).toBe(1);
    await f.replica.stop();
    await turn();
    expect(running.outcome).toBe('resolved');
  });

  it('sends nothing of either batch when a save fails while more input waits', async () => {
    const f = harness(1, [2, 3]);
    const running = watch(f.replica.start());
    f.deliver(append(1, 'a'));
    await until('the first batch is handed to storage', () => f.storage.waiting === 1);
    f.deliver(append(2, 'b'));
    for (let i = 0; i < 20; i++) await turn();
    const error = new Error('disk on fire');
    f.storage.fail(error);
    await until('start() to end', () => running.outcome !== 'pending');
    expect(running.outcome).toBe(error);
    expect(f.sent).toEqual([]); // no acknowledgement of either batch, nor anything else
    expect(f.storage.batches).toHaveLength(1); // the second batch never reached storage
    await expect(f.replica.tick()).rejects.toBe(error);
    expect((await MemoryStorage.prototype.load.call(f.storage)).entries).toEqual([]);
  });
});

describe('saves under start(): a leader alone', () => {
  /** Starts a one-member replica and lets it win its election; its first save (term, noop) is held. */
  async function leader() {
    const l = harness(1, []);
    const running = watch(l.replica.start());
    await until('the first tick', l.ticked);
    l.advance(400); // the election timeout passes: it wins alone and saves its term and noop
    await until('the election is handed to storage', () => l.storage.waiting === 1);
    return { ...l, running };
  }

  it('reports queued only once the batch is durable, and proposals made meanwhile only after their own', async () => {
    const l = await leader();
    l.sm.submit({ id: 'x' });
    l.replica.wake();
    for (let i = 0; i < 20; i++) await turn();
    expect(l.sm.states.get('x')).toBeUndefined(); // polled only after the save in flight resolves
    l.storage.release();
    await until('x is handed to storage', () => l.storage.waiting === 1);
    expect(l.sm.states.get('x')).toBeUndefined(); // its batch is not durable yet
    expect(l.replica.status.lastApplied).toBe(1); // the noop, durable, is committed and applied
    l.storage.release();
    await until('x is applied', () => l.sm.appliedIds.includes('x'));
    expect(l.sm.statusesOf('x')).toEqual(['queued', 'committed', 'applied']);
    expect(l.storage.maxInFlight).toBe(1);
    await l.replica.stop();
  });

  /** A leader whose save of `x` is in flight when a readIndex() and then stop() are called. */
  async function stopWhileSaving() {
    const l = await leader();
    l.storage.release();
    await until('the noop is applied', () => l.replica.status.lastApplied === 1);
    l.sm.submit({ id: 'x' });
    l.replica.wake();
    await until('x is handed to storage', () => l.storage.waiting === 1);
    const read = watch(l.replica.readIndex());
    const stopped = watch(l.replica.stop());
    return { l, read, stopped };
  }

  it('stop() during an in-flight save finishes its hand-over and settles every promise', async () => {
    const { l, read, stopped } = await stopWhileSaving();
    for (let i = 0; i < 20; i++) await turn();
    expect(stopped.outcome).toBe('pending'); // it waits for the save in flight
    expect(l.storage.closed).toBe(0);
    l.storage.release();
    await until('stop() to resolve', () => stopped.outcome !== 'pending');
    await turn();
    expect(stopped.outcome).toBe('resolved');
    expect(l.running.outcome).toBe('resolved');
    // Settled either way: by the finished hand-over, or rejected by stop().
    expect(read.outcome === 'resolved' || read.outcome instanceof ReplicaStoppedError).toBe(true);
    expect(l.sm.statusesOf('x')).toEqual(['queued', 'committed', 'applied']); // acted on once durable
    expect(l.storage.closed).toBe(1);
  });

  it('stop() during an in-flight save that fails acts on nothing and still settles', async () => {
    const { l, read, stopped } = await stopWhileSaving();
    const error = new Error('disk on fire');
    l.storage.fail(error);
    await until('stop() to resolve', () => stopped.outcome !== 'pending');
    await until('start() to end', () => l.running.outcome !== 'pending');
    expect(stopped.outcome).toBe('resolved');
    expect(l.running.outcome).toBe(error);
    // Rejected, by the failed save or by stop(), whichever came first.
    expect(read.outcome === error || read.outcome instanceof ReplicaStoppedError).toBe(true);
    expect(l.sm.states.get('x')).toBeUndefined(); // never reported queued: its batch was not saved
    expect(l.storage.closed).toBe(1);
  });
});

/** A vote (or pre-vote) for replica 1 in term 1, from `from`. */
const vote = (from: number, pre: boolean): Message<T, D> => ({
  type: 'voteResponse',
  from,
  term: 1,
  granted: true,
  pre,
});

/** Replica 1 of three, elected leader of term 1 by replica 2; its first save (the noop) is held. */
async function elected(leaderSendsBeforeSave?: boolean) {
  const l = harness(1, [2, 3], leaderSendsBeforeSave);
  const running = watch(l.replica.start());
  await until('the first tick', l.ticked);
  l.advance(400); // campaigns: a pre-vote first, which saves nothing
  await until('a pre-vote request', () => l.sent.length > 0);
  l.deliver(vote(2, true)); // the real campaign: its term and vote are saved before it asks
  await until('the term and vote are handed to storage', () => l.storage.waiting === 1);
  expect(l.sent.filter(([, m]) => m.type === 'vote' && !m.pre)).toEqual([]);
  l.storage.release();
  await until('a vote request', () => l.sent.some(([, m]) => m.type === 'vote' && !m.pre));
  l.deliver(vote(2, false));
  await until('the noop is handed to storage', () => l.storage.waiting === 1);
  expect(l.replica.status.role).toBe('leader');
  return { ...l, running };
}

/** Follower `from`'s acknowledgement, in term 1, of the leader's log up to `index`. */
const ack = (from: number, index: number): Message<T, D> => ({
  type: 'appendResponse',
  from,
  term: 1,
  success: true,
  index,
  hintIndex: 0,
  hintTerm: 0,
  round: 0,
});

const appends = (sent: [number, Message<T, D>][]): number[][] =>
  sent.flatMap(([, m]) => (m.type === 'append' && m.entries.length > 0 ? [m.entries.map((e) => e.index)] : []));

describe('a leader of three and the opt-in of §10.2.1 (leaderSendsBeforeSave)', () => {
  it('by default sends no entry before its own save of it resolves', async () => {
    const l = await elected();
    for (let i = 0; i < 20; i++) await turn();
    expect(appends(l.sent)).toEqual([]);
    l.storage.release();
    await until('the noop is sent', () => appends(l.sent).length > 0);
    expect(appends(l.sent)).toEqual([[1], [1]]);
    await l.replica.stop();
  });

  it('opted in, sends new entries while saving them, yet reports queued and commits only once durable', async () => {
    const l = await elected(true);
    await until('the noop is sent', () => appends(l.sent).length > 0);
    expect(appends(l.sent)).toEqual([[1], [1]]); // while its own save is held
    l.storage.release();
    await until('the noop is durable', () => l.storage.waiting === 0 && l.storage.inFlight === 0);
    l.deliver(ack(2, 1));
    await until('the noop commits', () => l.replica.status.commitIndex === 1);
    l.sm.submit({ id: 'x' });
    l.replica.wake();
    await until('x is sent', () => appends(l.sent).some((a) => a.includes(2)));
    expect(l.storage.waiting).toBe(1); // x is still being saved on the leader
    expect(l.sm.states.get('x')).toBeUndefined(); // and is not yet reported queued
    // Follower 2 acknowledges x before the leader's save resolves: one vote of the two it needs.
    l.deliver(ack(2, 2));
    for (let i = 0; i < 20; i++) await turn();
    expect(l.replica.status.commitIndex).toBe(1);
    l.storage.release();
    await until('x is applied', () => l.sm.appliedIds.includes('x'));
    expect(l.sm.statusesOf('x')).toEqual(['queued', 'committed', 'applied']);
    await l.replica.stop();
  });

  it('opted in, a save that fails has sent the entries but reports nothing and commits nothing', async () => {
    const l = await elected(true);
    l.storage.release();
    l.deliver(ack(2, 1));
    await until('the noop commits', () => l.replica.status.commitIndex === 1);
    l.sm.submit({ id: 'x' });
    l.replica.wake();
    await until('x is sent', () => appends(l.sent).some((a) => a.includes(2)));
    const error = new Error('disk on fire');
    l.storage.fail(error);
    await until('start() to end', () => l.running.outcome !== 'pending');
    expect(l.running.outcome).toBe(error);
    expect(l.sm.states.get('x')).toBeUndefined();
    expect(l.replica.status.commitIndex).toBe(1);
  });
});
