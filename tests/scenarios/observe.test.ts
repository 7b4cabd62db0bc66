// Watching a replica: its typed events, its log lines, its status, and what happens when user
// code throws. A seeded LocalNetwork in virtual time with hand-driven ticks, so every count
// below is the same on any machine.
import { describe, expect, it } from 'vitest';
import {
  InvalidOptionsError,
  LocalNetwork,
  MemoryStorage,
  ProposalQueue,
  Replica,
  ReplicaStoppedError,
  StateMachineError,
  seededRandom,
  type Logger,
  type ReplicaEvents,
  type Snapshot,
  type StateMachine,
  type Storage,
  type TransitionState,
} from '../../src/index.js';

interface Tx {
  readonly id: string;
}
const NOOP: Tx = { id: 'noop' };

/** A state machine that records what it applies and takes snapshots of it; `throwAt` makes one index throw. */
class Machine implements StateMachine<Tx, string[]> {
  pending: Tx[] = [];
  applied: [number, string][] = [];
  states: [string, TransitionState][] = [];
  throwAt: { index: number; async: boolean } | undefined;
  getPendingTransitions(): Tx[] {
    const p = this.pending;
    this.pending = [];
    return p;
  }
  applyTransition(t: Tx, index: number): void | Promise<void> {
    this.applied.push([index, t.id]);
    if (this.throwAt?.index === index) {
      const error = new Error(`cannot apply ${t.id}`);
      if (this.throwAt.async) return Promise.reject(error);
      throw error;
    }
  }
  registerTransitionState(id: string, state: TransitionState): void {
    this.states.push([id, state]);
  }
  createSnapshot(lastIncludedIndex: number, lastIncludedTerm: number): Snapshot<string[]> {
    return { lastIncludedIndex, lastIncludedTerm, data: this.applied.map(([, id]) => id) };
  }
  setSnapshot(s: Snapshot<string[]>): void {
    this.applied = s.data.map((id, i) => [i + 1, id]);
  }
}

/** A logger that keeps every line. */
class Lines implements Logger {
  readonly lines: { level: string; fields: Record<string, unknown>; message: string }[] = [];
  debug(fields: object, message: string): void {
    this.lines.push({ level: 'debug', fields: fields as Record<string, unknown>, message });
  }
  info(fields: object, message: string): void {
    this.lines.push({ level: 'info', fields: fields as Record<string, unknown>, message });
  }
  warn(fields: object, message: string): void {
    this.lines.push({ level: 'warn', fields: fields as Record<string, unknown>, message });
  }
  error(fields: object, message: string): void {
    this.lines.push({ level: 'error', fields: fields as Record<string, unknown>, message });
  }
  messages(level?: string): string[] {
    return this.lines.filter((l) => level === undefined || l.level === level).map((l) => l.message);
  }
}

interface Options {
  seed: number;
  snapshotDelta?: number;
  storage?: (id: number) => Storage<Tx, string[]>;
  ids?: number[];
}

function cluster({ seed, snapshotDelta = 0, storage, ids = [1, 2, 3] }: Options) {
  const net = new LocalNetwork<Tx, string[]>({ seed });
  const paused = new Set<number>();
  const make = (id: number, peers: number[], join = false) => {
    const machine = new Machine();
    const log = new Lines();
    const replica = new Replica<Tx, string[]>({
      id,
      peerIds: peers.filter((p) => p !== id),
      cluster: net.cluster(id),
      stateMachine: machine,
      noopTransition: NOOP,
      heartbeatTimeout: 50,
      electionTimeoutRange: [150, 300],
      clock: net.clock,
      random: seededRandom(seed * 10 + id),
      snapshotDelta,
      join,
      logger: log,
      ...(storage ? { storage: storage(id) } : {}),
    });
    const events: { [K in keyof ReplicaEvents]?: ReplicaEvents[K][] } = {};
    for (const name of [
      'leader',
      'role',
      'term',
      'commit',
      'snapshot',
      'membership',
      'storageError',
      'stopped',
    ] as const) {
      replica.on(name, (e) => ((events[name] ??= []) as unknown[]).push(e));
    }
    return { id, machine, replica, log, events, failed: undefined as unknown };
  };
  const nodes = ids.map((id) => make(id, ids));
  const step = async (): Promise<void> => {
    net.advance(1);
    for (const n of nodes) {
      if (paused.has(n.id) || n.failed !== undefined) continue;
      await n.replica.tick().catch((e: unknown) => {
        n.failed = e;
      });
    }
    await new Promise((resolve) => setImmediate(resolve));
  };
  const until = async (what: string, cond: () => boolean, maxMs = 5_000): Promise<void> => {
    for (let i = 0; i < maxMs; i++) {
      if (cond()) return;
      await step();
    }
    throw new Error(`not within ${maxMs} virtual ms: ${what}`);
  };
  const leader = () => nodes.find((n) => n.replica.status.role === 'leader' && n.failed === undefined);
  const elected = async () => {
    await until('a leader that has applied its noop', () => {
      const l = leader();
      return l !== undefined && l.replica.status.lastApplied >= 1;
    });
    return leader()!;
  };
  const join = (id: number) => {
    const n = make(id, ids, true);
    nodes.push(n);
    return n;
  };
  return { net, nodes, step, until, elected, paused, join };
}

describe('replica events and log lines', { timeout: 20_000 }, () => {
  it('reports an election: term, role and leader on every replica, commit as entries commit', async () => {
    const c = cluster({ seed: 1 });
    const l = await c.elected();
    await c.until('every replica knows the leader', () => c.nodes.every((n) => n.replica.status.leaderId === l.id));
    const term = l.replica.status.term;
    for (const n of c.nodes) {
      expect(n.events.leader?.at(-1)).toEqual({ leaderId: l.id, term });
      expect(n.events.term?.at(-1)?.term).toBe(term);
    }
    expect(l.events.role?.at(-1)).toEqual({ role: 'leader', previous: 'candidate', term });
    expect(l.events.role?.[0]).toEqual({ role: 'candidate', previous: 'follower', term: expect.any(Number) });
    expect(l.log.messages('info')).toEqual(expect.arrayContaining(['replica started', 'campaigning', 'became leader']));
    expect(l.log.lines.find((x) => x.message === 'leader changed')?.fields).toEqual({ leaderId: l.id, term });

    l.machine.pending.push({ id: 'a' }, { id: 'b' });
    await c.until('the two entries are applied everywhere', () =>
      c.nodes.every((n) => n.replica.status.lastApplied === 3),
    );
    const commits = l.events.commit!;
    expect(commits.at(-1)!.commitIndex).toBe(3);
    // One event per tick that moved the commit index: each starts where the one before ended.
    for (let i = 1; i < commits.length; i++) expect(commits[i]!.previous).toBe(commits[i - 1]!.commitIndex);
    expect(commits[0]!.previous).toBe(0);
  });

  it('reports membership changes and a new member catching up, in status and in the log', async () => {
    const c = cluster({ seed: 2 });
    const l = await c.elected();
    // Enough entries that the new member is far behind (the catch-up log starts at 10,000).
    for (let i = 0; i < 12_000; i++) l.machine.pending.push({ id: `x${i}` });
    await c.until('the entries are committed', () => l.replica.status.commitIndex >= 12_001, 20_000);
    const joiner = c.join(4);
    c.paused.add(4); // it exists but does not answer yet: the change waits in its catching-up phase
    let added = false;
    void l.replica.addMember(4).then(() => (added = true));
    await c.until('the change is under way', () => l.replica.status.membershipChange !== undefined);
    expect(l.replica.status.membershipChange).toEqual({ id: 4, kind: 'add', phase: 'catching-up' });
    const row = () => l.replica.status.followers.find((f) => f.id === 4);
    expect(row()).toMatchObject({ id: 4, voter: false, matchIndex: 0, lag: l.replica.status.lastLogIndex });
    const about4 = (message: string) => l.log.lines.find((x) => x.message === message && x.fields.follower === 4);
    expect(about4('follower catching up')?.fields).toMatchObject({
      matchIndex: 0,
      behind: l.replica.status.lastLogIndex,
    });
    c.paused.delete(4);
    await c.until('the member is added', () => added, 20_000);
    expect(l.replica.status.membershipChange).toBeUndefined();
    expect(l.replica.status.voters).toEqual([1, 2, 3, 4]);
    expect(row()).toMatchObject({ voter: true, state: 'replicate' });
    expect(l.events.membership?.at(-1)).toEqual({ voters: [1, 2, 3, 4], previous: [1, 2, 3] });
    expect(about4('follower caught up')?.fields.tookMs).toBeGreaterThan(0);
    await c.until('the new member applies the change', () => joiner.replica.status.voters.length === 4);
    expect(joiner.events.membership?.at(-1)?.voters).toEqual([1, 2, 3, 4]);

    let removed = false;
    void l.replica.removeMember(4).then(() => (removed = true));
    await c.until('the member is removed', () => removed);
    expect(l.events.membership?.at(-1)).toEqual({ voters: [1, 2, 3], previous: [1, 2, 3, 4] });
    expect(l.log.lines.filter((x) => x.message === 'membership changed').map((x) => x.fields.voters)).toEqual([
      [1, 2, 3, 4],
      [1, 2, 3],
    ]);
  });

  it('shows a leadership transfer in status and reports the new leader everywhere', async () => {
    const c = cluster({ seed: 3 });
    const l = await c.elected();
    await c.until('every follower replicates', () => l.replica.status.followers.every((f) => f.state === 'replicate'));
    const to = c.nodes.find((n) => n !== l)!;
    c.paused.add(to.id);
    let done = false;
    void l.replica.transferLeadership(to.id).then(() => (done = true));
    await c.step();
    expect(l.replica.status.transfer).toEqual({ to: to.id });
    c.paused.delete(to.id);
    await c.until('the transfer completes', () => done);
    expect(l.replica.status.transfer).toBeUndefined();
    await c.until('everyone knows', () => c.nodes.every((n) => n.events.leader?.at(-1)?.leaderId === to.id));
    expect(l.events.role?.at(-1)).toMatchObject({ role: 'follower', previous: 'leader' });
  });

  it('reports snapshots taken, and installed on a follower that fell behind', async () => {
    const c = cluster({ seed: 4, snapshotDelta: 10 });
    const l = await c.elected();
    const behind = c.nodes.find((n) => n !== l)!;
    c.net.isolate(behind.id);
    for (let i = 0; i < 30; i++) l.machine.pending.push({ id: `s${i}` });
    await c.until('the leader compacts', () => (l.events.snapshot ?? []).length >= 1);
    const taken = l.events.snapshot![0]!;
    expect(taken).toEqual({ kind: 'taken', index: l.replica.status.lastApplied, term: l.replica.status.term });
    expect(l.log.lines.find((x) => x.message === 'snapshot taken')?.fields).toEqual({
      index: taken.index,
      term: taken.term,
    });
    const rowOf = () => l.replica.status.followers.find((x) => x.id === behind.id)!;
    await c.until('the leader sends it a snapshot', () => rowOf().state === 'snapshot');
    const row = rowOf();
    expect(row).toMatchObject({ state: 'snapshot', matchIndex: 0, snapshotBytes: { acked: 0 } });
    expect(row.snapshotBytes!.total).toBeGreaterThan(0);
    c.net.heal();
    await c.until('the isolated follower installs a snapshot', () =>
      (behind.events.snapshot ?? []).some((s) => s.kind === 'installed'),
    );
    const installed = behind.events.snapshot!.find((s) => s.kind === 'installed')!;
    expect(installed).toMatchObject({ kind: 'installed', from: l.id });
    expect(installed.index).toBe(taken.index);
    expect(behind.machine.applied.map(([, id]) => id)).toEqual(l.machine.applied.map(([, id]) => id));
  });

  it('logs dropped messages as one line per interval, not one per message', async () => {
    const c = cluster({ seed: 5 });
    const l = await c.elected();
    const f = c.nodes.find((n) => n !== l)!;
    const lc = c.net.cluster(99 as number); // a stranger: every replica drops what it sends
    for (let i = 0; i < 500; i++) lc.sendMessage(f.id, { type: 'garbage' } as never);
    const warns = () => f.log.lines.filter((x) => x.level === 'warn' && x.message.startsWith('dropped messages'));
    for (let i = 0; i < 1_000; i++) await c.step();
    // The first drops are logged at once, the rest summed until the interval (5 s) has passed.
    expect(warns()).toHaveLength(1);
    await c.until('the interval passes', () => warns().length === 2, 6_000);
    expect(warns().reduce((n, x) => n + (x.fields.count as number), 0)).toBe(500);
    expect(warns()[1]!.fields.sinceMs).toBeGreaterThanOrEqual(5_000);
    expect(f.replica.metrics.messagesDropped).toBe(500);
  });

  it('keeps ticking when a listener or the logger throws', async () => {
    const c = cluster({ seed: 6 });
    const l = await c.elected();
    const before = l.events.commit?.length ?? 0;
    const off = l.replica.on('commit', () => {
      throw new Error('listener bug');
    });
    l.machine.pending.push({ id: 'a' });
    await c.until('applied', () => l.replica.status.lastApplied === 2);
    expect(l.events.commit!.length).toBeGreaterThan(before); // the listener added earlier still ran
    expect(l.log.lines.find((x) => x.message.includes('listener threw'))?.fields).toMatchObject({ event: 'commit' });
    off();
    const warned = l.log.lines.length;
    l.machine.pending.push({ id: 'b' });
    await c.until('applied', () => l.replica.status.lastApplied === 3);
    expect(l.log.lines.slice(warned).some((x) => x.message.includes('listener threw'))).toBe(false);

    const net = new LocalNetwork<Tx>({ seed: 7 });
    const angry: Logger = {
      debug: () => {
        throw new Error('x');
      },
      info: () => {
        throw new Error('x');
      },
      warn: () => {
        throw new Error('x');
      },
      error: () => {
        throw new Error('x');
      },
    };
    const solo = new Replica<Tx>({
      ...{ id: 1, peerIds: [], cluster: net.cluster(1), stateMachine: new Machine(), noopTransition: NOOP },
      ...{ heartbeatTimeout: 50, electionTimeoutRange: [150, 300], clock: net.clock, logger: angry },
    });
    for (let i = 0; i < 400 && solo.status.role !== 'leader'; i++) {
      net.advance(1);
      await solo.tick();
    }
    expect(solo.status.role).toBe('leader');
  });

  it('refuses a logger without the four methods, naming the option', () => {
    const net = new LocalNetwork<Tx>({ seed: 8 });
    const build = (logger: unknown) =>
      new Replica<Tx>({
        ...{ id: 1, peerIds: [], cluster: net.cluster(1), stateMachine: new Machine(), noopTransition: NOOP },
        ...{ heartbeatTimeout: 50, electionTimeoutRange: [150, 300], logger: logger as Logger },
      });
    expect(() => build({ info: () => undefined })).toThrow(InvalidOptionsError);
    expect(() => build({ info: () => undefined })).toThrow(/logger/);
    expect(() => build(console)).not.toThrow();
  });
});

describe('a storage failure and a stop, as events', { timeout: 20_000 }, () => {
  it('emits storageError then stopped once, logs an error, and rejects what waits', async () => {
    let failing = false;
    const c = cluster({
      seed: 9,
      storage: () => {
        const m = new MemoryStorage<Tx, string[]>();
        return {
          load: () => m.load(),
          save: (b) => (failing ? Promise.reject(new Error('disk full')) : m.save(b)),
        };
      },
    });
    const l = await c.elected();
    const read = l.replica.readIndex().catch((e: unknown) => e);
    failing = true;
    l.machine.pending.push({ id: 'a' });
    await c.until('the leader fails', () => l.failed !== undefined);
    expect((l.failed as Error).message).toBe('disk full');
    expect(l.events.storageError).toEqual([{ error: l.failed }]);
    expect(l.events.stopped).toEqual([{ error: l.failed }]);
    expect(l.log.lines.find((x) => x.level === 'error')?.message).toMatch(/storage failed/);
    expect(await read).toBe(l.failed);
    await l.replica.stop();
    expect(l.events.stopped).toHaveLength(1);
  });

  it('emits stopped on stop(), and the ProposalQueue rejects what waits with ReplicaStoppedError', async () => {
    const net = new LocalNetwork<Tx>({ seed: 10 });
    const queue = new ProposalQueue<Tx, unknown, void>({ applyTransition: () => undefined });
    const replica = new Replica<Tx>({
      ...{ id: 1, peerIds: [2, 3], cluster: net.cluster(1), stateMachine: queue, noopTransition: NOOP },
      ...{ heartbeatTimeout: 50, electionTimeoutRange: [150, 300], clock: net.clock },
    });
    queue.attach(replica);
    const stopped: unknown[] = [];
    replica.on('stopped', ({ error }) => stopped.push(error));
    await replica.tick();
    const waiting = queue.propose({ id: 'p' }).catch((e: unknown) => e); // no quorum: it can only wait
    await replica.stop();
    expect(stopped).toHaveLength(1);
    expect(stopped[0]).toBeInstanceOf(ReplicaStoppedError);
    expect(await waiting).toBe(stopped[0]);
    expect(queue.size).toBe(0);
    await expect(queue.propose({ id: 'later' })).rejects.toBe(stopped[0]);
  });
});

describe('when applyTransition throws', { timeout: 20_000 }, () => {
  for (const async of [false, true]) {
    it(`stops the replica with a StateMachineError naming the index, and never applies it twice (${async ? 'a rejected promise' : 'a throw'})`, async () => {
      const c = cluster({ seed: 11 + Number(async) });
      const l = await c.elected();
      const f = c.nodes.find((n) => n !== l)!;
      f.machine.throwAt = { index: 3, async };
      l.machine.pending.push({ id: 'a' }, { id: 'b' }, { id: 'c' });
      await c.until('the others apply all three', () => l.replica.status.lastApplied === 4);
      await c.until('the follower fails', () => f.failed !== undefined);
      const error = f.failed as StateMachineError;
      expect(error).toBeInstanceOf(StateMachineError);
      expect(error.index).toBe(3);
      expect((error.cause as Error).message).toBe('cannot apply b');
      expect(f.events.stopped).toEqual([{ error }]);
      expect(f.log.lines.find((x) => x.level === 'error')?.message).toMatch(/stopped for good/);
      // Later ticks reject with the same error and never call applyTransition again.
      await expect(f.replica.tick()).rejects.toBe(error);
      await expect(f.replica.readIndex()).rejects.toBe(error);
      expect(f.machine.applied.map(([i]) => i)).toEqual([1, 2, 3]);
      expect(f.replica.status.lastApplied).toBe(2);
      // The rest of the cluster goes on.
      l.machine.pending.push({ id: 'd' });
      await c.until('the others commit more', () => l.replica.status.lastApplied === 5);
    });
  }
});
