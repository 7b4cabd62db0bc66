// ProposalQueue, the propose helper: what `await propose(t)` promises, on a seeded LocalNetwork
// in virtual time with hand-driven ticks. Each proposal resolves with the value applyTransition
// returned for its own entry, or rejects with a typed error; a superseded attempt is never
// reported as done.
import { describe, expect, it } from 'vitest';
import {
  ConflictError,
  LocalNetwork,
  NotLeaderError,
  ProposalQueue,
  ProposalTimeoutError,
  Replica,
  seededRandom,
} from '../../src/index.js';

interface Add {
  readonly id: string;
  readonly amount: number;
}
const NOOP: Add = { id: 'noop', amount: 0 };

/** A counter whose applyTransition returns `<id>@<index>`: each entry's value is its own. */
class Counter {
  total = 0;
  readonly applied: string[] = [];
  applyTransition(t: Add, index: number): string {
    this.total += t.amount;
    if (t.id !== NOOP.id) this.applied.push(`${t.id}@${index}`);
    return `${t.id}@${index}`;
  }
}

interface Outcome {
  settled: boolean;
  value?: string;
  error?: unknown;
}

function track(p: Promise<string>): Outcome {
  const o: Outcome = { settled: false };
  p.then(
    (v) => Object.assign(o, { settled: true, value: v }),
    (e: unknown) => Object.assign(o, { settled: true, error: e }),
  );
  return o;
}

function cluster(seed: number) {
  const net = new LocalNetwork<Add>({ seed });
  const ids = [1, 2, 3];
  const paused = new Set<number>();
  const nodes = ids.map((id) => {
    const counter = new Counter();
    const queue = new ProposalQueue<Add, unknown, string>(counter, { clock: net.clock });
    const replica = new Replica<Add>({
      id,
      peerIds: ids.filter((p) => p !== id),
      cluster: net.cluster(id),
      stateMachine: queue,
      noopTransition: NOOP,
      heartbeatTimeout: 50,
      electionTimeoutRange: [150, 300],
      clock: net.clock,
      random: seededRandom(seed * 10 + id),
    });
    queue.attach(replica);
    return { id, counter, queue, replica };
  });
  const node = (id: number) => nodes[id - 1]!;
  const step = async (): Promise<void> => {
    net.advance(1);
    for (const n of nodes) if (!paused.has(n.id)) await n.replica.tick();
    await new Promise((resolve) => setImmediate(resolve)); // let settled promises run their callbacks
  };
  const until = async (what: string, cond: () => boolean, maxMs = 5_000): Promise<void> => {
    for (let i = 0; i < maxMs; i++) {
      if (cond()) return;
      await step();
    }
    throw new Error(`not within ${maxMs} virtual ms: ${what}`);
  };
  const leader = () => nodes.find((n) => n.replica.status.role === 'leader');
  const elected = async () => {
    await until('a leader that has applied its noop', () => {
      const l = leader();
      return (
        l !== undefined &&
        l.replica.status.lastApplied >= 1 &&
        l.replica.status.commitIndex === l.replica.status.lastLogIndex
      );
    });
    return leader()!;
  };
  return { net, nodes, node, step, until, elected, paused };
}

describe('ProposalQueue: await propose(t)', { timeout: 15_000 }, () => {
  it('resolves with the value applyTransition returned for its entry, once applied on this replica', async () => {
    const c = cluster(1);
    const l = await c.elected();
    const o = track(l.queue.propose({ id: 'a', amount: 5 }));
    await c.until('the proposal settles', () => o.settled);
    expect(o.error).toBeUndefined();
    expect(l.counter.applied).toEqual(['a@2']); // after the leader's noop at index 1
    expect(o.value).toBe('a@2');
    expect(l.counter.total).toBe(5);
    expect(l.queue.size).toBe(0);
  });

  it('rejects with NotLeaderError naming the leader when proposed on a follower', async () => {
    const c = cluster(2);
    const l = await c.elected();
    const f = c.nodes.find((n) => n !== l)!;
    await c.until('the follower knows the leader', () => f.replica.status.leaderId === l.id);
    const o = track(f.queue.propose({ id: 'f', amount: 1 }));
    await c.until('the proposal settles', () => o.settled);
    expect(o.error).toBeInstanceOf(NotLeaderError);
    expect((o.error as NotLeaderError).leaderId).toBe(l.id);
    expect(f.queue.size).toBe(0);
  });

  it('rejects with NotLeaderError when the leader loses leadership before it polls the proposal', async () => {
    const c = cluster(3);
    const old = await c.elected();
    c.paused.add(old.id); // a long pause (think GC): the others elect a new leader meanwhile
    await c.until('a new leader', () => c.nodes.some((n) => n !== old && n.replica.status.role === 'leader'));
    const fresh = c.nodes.find((n) => n !== old && n.replica.status.role === 'leader')!;
    for (let i = 0; i < 60; i++) await c.step(); // a heartbeat of the new leader waits in its inbox
    expect(old.replica.status.role).toBe('leader');
    const o = track(old.queue.propose({ id: 'late', amount: 1 })); // it still thinks it leads
    c.paused.delete(old.id);
    await c.until('the proposal settles', () => o.settled);
    expect(o.error).toBeInstanceOf(NotLeaderError);
    expect((o.error as NotLeaderError).leaderId).toBe(fresh.id);
  });

  it('rejects with ConflictError when a new leader removes the entry', async () => {
    const c = cluster(4);
    const old = await c.elected();
    c.net.isolate(old.id);
    const o = track(old.queue.propose({ id: 'lost', amount: 7 }));
    await c.until(
      "queued in the old leader's log only",
      () => old.replica.status.lastLogIndex > old.replica.status.commitIndex,
    );
    await c.until('a new leader', () => c.nodes.some((n) => n !== old && n.replica.status.role === 'leader'));
    c.net.heal();
    await c.until('the proposal settles', () => o.settled);
    expect(o.error).toBeInstanceOf(ConflictError);
    for (const n of c.nodes) expect(n.counter.applied).not.toContain(expect.stringMatching(/^lost@/));
  });

  it("rejects with the signal's reason when aborted, and never proposes it if not yet polled", async () => {
    const c = cluster(5);
    const l = await c.elected();
    const ac = new AbortController();
    const p = l.queue.propose({ id: 'x', amount: 1 }, { signal: ac.signal });
    const o = track(p);
    await Promise.resolve();
    ac.abort(new Error('the client went away'));
    await c.until('the proposal settles', () => o.settled);
    expect((o.error as Error).message).toBe('the client went away');
    for (let i = 0; i < 200; i++) await c.step();
    expect(l.counter.applied).not.toContain(expect.stringMatching(/^x@/));
    await expect(l.queue.propose({ id: 'y', amount: 1 }, { signal: AbortSignal.abort() })).rejects.toThrow();
    expect(l.queue.size).toBe(0);
  });

  it('refuses at once what the replica would drop without a report: no id, a bad timeoutMs', async () => {
    const c = cluster(9);
    const l = c.node(1); // no tick needed: refused before anything is queued
    await expect(l.queue.propose({ amount: 1 } as unknown as Add)).rejects.toThrow(TypeError);
    await expect(l.queue.propose({ id: 'z', amount: 1 }, { timeoutMs: -1 })).rejects.toThrow(RangeError);
    expect(l.queue.size).toBe(0);
  });

  it('rejects with ProposalTimeoutError once timeoutMs of the given clock has passed', async () => {
    const c = cluster(6);
    const l = await c.elected();
    c.net.isolate(l.id); // it cannot commit
    const start = c.net.now();
    const o = track(l.queue.propose({ id: 't', amount: 1 }, { timeoutMs: 100 }));
    await c.until('the proposal settles', () => o.settled);
    expect(o.error).toBeInstanceOf(ProposalTimeoutError);
    expect((o.error as ProposalTimeoutError).timeoutMs).toBe(100);
    expect(c.net.now() - start).toBeGreaterThanOrEqual(100);
    expect(l.queue.size).toBe(0);
  });

  it('without a clock, a timer rejects at the deadline even when the replica does not tick', async () => {
    const host = {
      wake() {},
      runExclusive: <X>(fn: () => X | Promise<X>) => Promise.resolve(fn()),
      status: { id: 1, leaderId: undefined },
    };
    const queue = new ProposalQueue<Add, unknown, string>(new Counter()).attach(host);
    await expect(queue.propose({ id: 'idle', amount: 1 }, { timeoutMs: 10 })).rejects.toBeInstanceOf(
      ProposalTimeoutError,
    );
    expect(queue.size).toBe(0);
    expect(queue.getPendingTransitions()).toEqual([]); // what timed out before the poll is never proposed
  });

  it("a retry resolves with its own entry's value, never with the superseded attempt's", async () => {
    const c = cluster(7);
    const l = await c.elected();
    c.net.isolate(l.id); // it still leads (check-quorum waits 300 ms) but cannot commit
    const first = track(l.queue.propose({ id: 'r', amount: 1 }, { timeoutMs: 50 }));
    await c.until('the first attempt times out', () => first.settled);
    expect(first.error).toBeInstanceOf(ProposalTimeoutError);
    const retry = track(l.queue.propose({ id: 'r', amount: 1 }));
    await c.until('the retry is in the log too', () => l.replica.status.lastLogIndex >= 3);
    expect(l.replica.status.role).toBe('leader');
    c.net.heal();
    await c.until('the retry settles', () => retry.settled);
    // Both entries apply (this state machine does not deduplicate); the retry's value is the second's.
    expect(l.counter.applied).toEqual(['r@2', 'r@3']);
    expect(retry.value).toBe('r@3');
  });

  it('after a leader change, an attempt whose entry was replaced is not done though its id was applied', async () => {
    const c = cluster(8);
    const old = await c.elected();
    c.net.isolate(old.id);
    const first = track(old.queue.propose({ id: 'k', amount: 1 }));
    await c.until('a new leader', () => c.nodes.some((n) => n !== old && n.replica.status.role === 'leader'));
    const fresh = c.nodes.find((n) => n !== old && n.replica.status.role === 'leader')!;
    const retry = track(fresh.queue.propose({ id: 'k', amount: 1 }));
    await c.until('the retry settles', () => retry.settled);
    c.net.heal();
    await c.until('the old leader applied the id', () => old.counter.applied.some((a) => a.startsWith('k@')));
    await c.until('the first attempt settles', () => first.settled);
    expect(retry.value).toMatch(/^k@/);
    expect(first.error).toBeInstanceOf(ConflictError);
    expect(old.queue.size).toBe(0);
  });
});
