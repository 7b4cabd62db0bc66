import { describe, expect, it } from 'vitest';
import {
  CorruptStateError,
  InvalidArgumentError,
  InvalidOptionsError,
  InvalidTransitionError,
  LocalNetwork,
  MAX_TERM_OR_INDEX,
  MemoryStorage,
  Replica,
  deriveSeed,
  seededRandom,
  type Cluster,
  type PersistentState,
  type ReplicaOptions,
  type Storage,
  type StorageBatch,
} from '../../src/index.js';
import {
  RecordingStateMachine,
  type TestSnapshotData,
  type TestTransition,
} from '../helpers/recording-state-machine.js';
import { raftOf } from '../helpers/simulation.js';
import { wholeSnapshot } from '../helpers/paper-harness.js';
import { ScenarioSimulation, commands, type TestMessage } from '../helpers/scenario-sim.js';

type Options = ReplicaOptions<TestTransition, TestSnapshotData>;

const stubCluster = (): Cluster<TestTransition, TestSnapshotData> => ({
  sendMessage() {},
  receiveMessages: () => [],
  halt: () => false,
  registerLeader() {},
});
const stubMachine = () => ({ registerTransitionState() {}, applyTransition() {}, getPendingTransitions: () => [] });
const base = (): Options => ({
  id: 1,
  peerIds: [2, 3],
  cluster: stubCluster(),
  stateMachine: stubMachine(),
  noopTransition: { id: 'noop' },
  heartbeatTimeout: 50,
  electionTimeoutRange: [150, 300],
});

describe('invalid options', () => {
  it('valid options construct a replica', () => {
    expect(() => new Replica(base())).not.toThrow();
    expect(
      () => new Replica({ ...base(), snapshotDelta: 10, stateMachine: new RecordingStateMachine(1) }),
    ).not.toThrow();
  });

  const cases: [string, Partial<Options> | ((o: Options) => Options), RegExp][] = [
    ['own id in peers', { peerIds: [1, 2] }, /own id 1/],
    ['duplicate peers', { peerIds: [2, 2, 3] }, /repeat/],
    ['non-integer peer', { peerIds: [2, 2.5] }, /peerIds/],
    ['zero heartbeat', { heartbeatTimeout: 0 }, /heartbeatTimeout must be a positive/],
    ['negative heartbeat', { heartbeatTimeout: -5 }, /heartbeatTimeout must be a positive/],
    ['NaN heartbeat', { heartbeatTimeout: Number.NaN }, /heartbeatTimeout/],
    ['inverted range', { electionTimeoutRange: [300, 150] }, /inverted/],
    ['zero catchUpTimeout', { catchUpTimeout: 0 }, /catchUpTimeout must be a positive/],
    ['negative catchUpTimeout', { catchUpTimeout: -1 }, /catchUpTimeout must be a positive/],
    ['NaN catchUpTimeout', { catchUpTimeout: Number.NaN }, /catchUpTimeout must be a positive/],
    ['infinite catchUpTimeout', { catchUpTimeout: Infinity }, /catchUpTimeout must be a positive/],
    ['catchUpTimeout not a number', { catchUpTimeout: '1000' as never }, /catchUpTimeout must be a positive/],
    [
      'range[0] equal to heartbeat',
      { heartbeatTimeout: 150, electionTimeoutRange: [150, 300] },
      /electionTimeoutRange\[0\].*above heartbeatTimeout/,
    ],
    [
      'range[0] below heartbeat',
      { heartbeatTimeout: 200, electionTimeoutRange: [150, 300] },
      /electionTimeoutRange\[0\].*above heartbeatTimeout/,
    ],
    ['one-element range', { electionTimeoutRange: [150] as unknown as [number, number] }, /electionTimeoutRange/],
    ['snapshotDelta without hooks', { snapshotDelta: 10 }, /snapshotDelta > 0 needs/],
    ['negative snapshotDelta', { snapshotDelta: -1 }, /snapshotDelta/],
    ['fractional snapshotDelta', { snapshotDelta: 1.5 }, /snapshotDelta/],
    ['fractional id', { id: 1.5 }, /id must be an integer/],
    ['string id', { id: '1' as unknown as number }, /id must be an integer/],
    [
      'cluster missing a method',
      {
        cluster: { sendMessage() {}, receiveMessages: () => [], halt: () => false } as unknown as Cluster<
          TestTransition,
          TestSnapshotData
        >,
      },
      /cluster/,
    ],
    [
      'state machine missing a method',
      { stateMachine: { applyTransition() {}, getPendingTransitions: () => [] } as never },
      /stateMachine/,
    ],
    ['noop without id', { noopTransition: {} as TestTransition }, /noopTransition/],
    ['leaderSendsBeforeSave not a boolean', { leaderSendsBeforeSave: 1 as never }, /leaderSendsBeforeSave must be a/],
  ];
  for (const [name, change, message] of cases) {
    it(`rejects ${name}`, () => {
      const options = typeof change === 'function' ? change(base()) : { ...base(), ...change };
      let error: unknown;
      try {
        new Replica(options);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(InvalidOptionsError);
      expect((error as Error).message).toMatch(message);
    });
  }
});

/** Everything a hostile message could change. */
function stateOf(sim: ScenarioSimulation, id: number): unknown {
  const n = sim.node(id);
  const r = raftOf(n.replica)!;
  return {
    status: n.replica.status,
    votedFor: r.votedFor,
    log: sim.logOf(id),
    applied: [...n.sm.appliedIds],
    states: [...n.sm.states.entries()].map(([k, v]) => [k, v.length]),
    leaderView: n.cluster.leaderId,
  };
}

/** Messages that are each one defect away from a message the target would act upon. */
function hostile(sim: ScenarioSimulation, target: number, from: number): unknown[] {
  const r = raftOf(sim.node(target).replica)!;
  const t = r.term;
  const last = r.log.lastIndex;
  const lastTerm = r.log.lastTerm;
  const commit = r.commitIndex;
  const chunkOf = { lastIncludedIndex: last + 50, lastIncludedTerm: t }; // well formed: only the chunk fields are wrong
  const entry = (index: number, term = t, transition: unknown = { id: 'evil' }) => ({ index, term, transition });
  const append = (o: Record<string, unknown>) => ({
    type: 'append',
    from,
    term: t,
    prevLogIndex: last,
    prevLogTerm: lastTerm,
    entries: [entry(last + 1)],
    leaderCommit: commit + 1,
    round: 0,
    ...o,
  });
  const vote = (o: Record<string, unknown>) => ({
    type: 'vote',
    from,
    term: t + 5,
    lastLogIndex: last + 100,
    lastLogTerm: t + 5,
    pre: false,
    force: false,
    ...o,
  });
  const nullProto = Object.assign(Object.create(null) as object, {
    type: 'vote',
    from,
    term: t + 5,
    lastLogIndex: last + 100,
  });
  return [
    null,
    undefined,
    42,
    'append',
    true,
    [],
    [vote({})],
    nullProto,
    { type: 'unknown', from, term: t + 5 },
    { type: 'constructor', from, term: t + 5 },
    { type: '__proto__', from, term: t + 5 },
    { type: 'toString', from, term: t + 5 },
    { type: 'hasOwnProperty', from, term: t + 5 },
    { ...vote({}), type: 'Vote' },
    { ...vote({}), type: new String('vote') },
    JSON.parse(
      `{"type":"vote","from":${from},"term":${t + 5},"lastLogTerm":${t + 5},"__proto__":{"lastLogIndex":1000}}`,
    ),
    vote({ lastLogIndex: undefined }),
    vote({ lastLogIndex: String(last + 100) }),
    vote({ lastLogIndex: -1 }),
    vote({ lastLogTerm: 2.5 }),
    vote({ term: t + 1.5 }),
    vote({ term: Number.NaN }),
    vote({ term: Number.POSITIVE_INFINITY }),
    vote({ term: String(t + 5) }),
    vote({ term: BigInt(t + 5) }),
    vote({ term: Number.MAX_SAFE_INTEGER + 2 }),
    // Terms and indexes a replica could not add one to.
    vote({ term: Number.MAX_SAFE_INTEGER }),
    vote({ term: MAX_TERM_OR_INDEX + 1 }),
    vote({ lastLogIndex: MAX_TERM_OR_INDEX + 1 }),
    append({ prevLogIndex: MAX_TERM_OR_INDEX, entries: [entry(MAX_TERM_OR_INDEX + 1)] }),
    append({ leaderCommit: Number.MAX_SAFE_INTEGER }),
    vote({ from: 99 }),
    vote({ from: target }),
    vote({ from: String(from) }),
    vote({ from: undefined }),
    append({ entries: [entry(last + 2)] }), // a gap
    append({ entries: [entry(last), entry(last + 1)] }), // overlapping prevLogIndex
    append({ entries: [entry(last + 1, t + 1)] }), // a term above the message's
    append({ entries: [entry(last + 1, t), entry(last + 2, t - 1)] }), // terms going back
    append({ entries: [entry(last + 1, lastTerm - 1)] }), // below prevLogTerm
    append({ entries: [{ index: last + 1, term: t }] }), // no transition
    append({ entries: [entry(last + 1, t, { id: {} })] }),
    append({ entries: [entry(last + 1, t, { id: Number.NaN })] }),
    append({ entries: [entry(last + 1, t, null)] }),
    append({ entries: [null] }),
    append({ entries: 'evil' }),
    append({ entries: null }),
    append({ entries: { 0: entry(last + 1), length: 1 } }),
    append({ prevLogIndex: last + 0.5 }),
    append({ prevLogTerm: -1 }),
    append({ leaderCommit: -1 }),
    append({ leaderCommit: undefined }),
    append({ term: t + 2, from: 99 }),
    append({ term: t + 2, from: target }),
    { type: 'appendResponse', from, term: t + 5, success: 'true', index: last, hintIndex: 0, hintTerm: 0 },
    { type: 'appendResponse', from, term: t + 5, success: true, index: -3, hintIndex: 0, hintTerm: 0 },
    { type: 'appendResponse', from, term: t + 5, success: false, index: last, hintIndex: 0 },
    { type: 'voteResponse', from, term: t + 5, granted: 1 },
    { type: 'snapshot', from, term: t + 5, snapshot: null },
    {
      type: 'snapshot',
      from,
      term: t + 5,
      snapshot: { lastIncludedIndex: last + 50, lastIncludedTerm: t + 6, data: { count: 0, hash: 0 } },
    },
    { type: 'snapshot', from, term: t + 5, snapshot: { lastIncludedIndex: last + 50, lastIncludedTerm: t } },
    { type: 'snapshot', from, term: t + 5, snapshot: { lastIncludedIndex: -5, lastIncludedTerm: t, data: {} } },
    { type: 'snapshot', from, term: t + 5, snapshot: 'data' },
    // Chunked InstallSnapshot: each chunk within the announced size, the size one string can hold.
    ...[
      { offset: 0, size: 3, chunk: 'four' },
      { offset: 2, size: 4, chunk: 'abc' },
      { offset: -1, size: 4, chunk: 'a' },
      { offset: 0, size: 4, chunk: 42 },
      { offset: 0, size: 2 ** 40, chunk: '{' },
      { offset: 0, size: 1.5, chunk: '' },
      { offset: 0, chunk: '1' },
    ].map((fields) => ({ type: 'snapshot', from, term: t + 5, snapshot: chunkOf, ...fields })),
    { type: 'snapshotResponse', from, term: t + 5, index: last, offset: -8 },
    { type: 'snapshotResponse', from, term: t + 5, index: 'x', offset: 8 },
    { type: 'snapshotResponse', from, term: t + 5, offset: 8 },
  ];
}

describe('malformed and hostile messages', () => {
  it('are dropped and counted, never thrown out of tick(), and change nothing (on a follower and on the leader)', async () => {
    const sim = new ScenarioSimulation({ size: 3, seed: 101 });
    const leader = await sim.stableLeader(1_500);
    leader.sm.submit(...commands('c', 4));
    await sim.untilApplied(
      sim.ids,
      commands('c', 4).map((c) => c.id),
      1_000,
    );
    const follower = sim.ids.find((id) => id !== leader.id)!;
    for (const [target, from] of [
      [follower, leader.id],
      [leader.id, follower],
    ] as const) {
      await sim.step();
      const node = sim.node(target);
      const before = stateOf(sim, target);
      const metrics = node.replica.metrics;
      const messages = hostile(sim, target, from);
      sim.inject(target, ...messages);
      // Same virtual time: nothing real is due, no timer fires; only the injected messages arrive.
      await expect(node.replica.tick()).resolves.toBeUndefined();
      const after = node.replica.metrics;
      expect(after.messagesIn - metrics.messagesIn).toBe(messages.length);
      expect(after.messagesDropped - metrics.messagesDropped).toBe(messages.length);
      expect(after.messagesOut - metrics.messagesOut, 'nothing answered').toBe(0);
      expect(stateOf(sim, target)).toEqual(before);
    }
    // Well-formed, but from the leader and rewriting a committed entry: dropped, counted, unanswered.
    {
      await sim.step();
      const f = sim.node(follower);
      const r = raftOf(f.replica)!;
      expect(r.commitIndex).toBeGreaterThan(2);
      const before = stateOf(sim, follower);
      const m0 = f.replica.metrics;
      // Entry 1 holds term >= 1; an entry 1 of term 0 after prevLogIndex 0 is well-formed but conflicts.
      expect(r.log.term(1)).toBeGreaterThan(0);
      sim.inject(follower, {
        type: 'append',
        from: leader.id,
        term: r.term,
        prevLogIndex: 0,
        prevLogTerm: 0,
        entries: [{ index: 1, term: 0, kind: 'transition', transition: { id: 'rewrite' } }],
        leaderCommit: r.commitIndex,
        round: 0,
      } satisfies TestMessage);
      await f.replica.tick();
      expect(f.replica.metrics.messagesDropped - m0.messagesDropped).toBe(1);
      expect(f.replica.metrics.messagesOut).toBe(m0.messagesOut);
      expect(stateOf(sim, follower)).toEqual(before);
    }
    // Control: a well-formed stale message through the same path is not dropped, and is answered.
    await sim.step();
    const f = sim.node(follower);
    const m0 = f.replica.metrics;
    const term = f.replica.status.term;
    sim.inject(follower, {
      type: 'vote',
      from: leader.id,
      term: term - 1,
      lastLogIndex: 0,
      lastLogTerm: 0,
      pre: false,
      force: false,
    } satisfies TestMessage);
    await f.replica.tick();
    expect(f.replica.metrics.messagesDropped).toBe(m0.messagesDropped);
    expect(f.replica.metrics.messagesOut).toBe(m0.messagesOut + 1);
    // The cluster carries on with the same leader.
    const elections = sim.ids.reduce((s, id) => s + sim.node(id).replica.metrics.electionsStarted, 0);
    leader.sm.submit(...commands('d', 3));
    await sim.untilApplied(
      sim.ids,
      commands('d', 3).map((c) => c.id),
      1_000,
    );
    await sim.run(500);
    expect(sim.leader()!.id).toBe(leader.id);
    expect(sim.ids.reduce((s, id) => s + sim.node(id).replica.metrics.electionsStarted, 0)).toBe(elections);
    for (const id of sim.ids)
      expect(sim.node(id).sm.appliedIds).toEqual([...commands('c', 4), ...commands('d', 3)].map((c) => c.id));
  });
});

/** A MemoryStorage whose save rejects with `failWith` while it is set. */
class FlakyStorage extends MemoryStorage<TestTransition, TestSnapshotData> {
  failWith: Error | undefined;
  saves = 0;
  override async save(batch: StorageBatch<TestTransition, TestSnapshotData>): Promise<void> {
    this.saves++;
    if (this.failWith) throw this.failWith;
    return super.save(batch);
  }
}

/** A hand-driven cluster of 3 over a LocalNetwork, recording what each replica sends and how each tick ends. */
function handCluster(seed: number) {
  const net = new LocalNetwork<TestTransition, TestSnapshotData>({ seed });
  const ids = [1, 2, 3];
  const sent: { at: number; from: number; message: TestMessage }[] = [];
  const failures = new Map<number, unknown>();
  const nodes = ids.map((id) => {
    const storage = new FlakyStorage();
    const sm = new RecordingStateMachine(id);
    const inner = net.cluster(id);
    const cluster: Cluster<TestTransition, TestSnapshotData> = {
      sendMessage: (to, message) => {
        sent.push({ at: net.now(), from: id, message });
        inner.sendMessage(to, message);
      },
      receiveMessages: () => inner.receiveMessages(),
      halt: () => inner.halt(),
      registerLeader: (l) => inner.registerLeader(l),
    };
    const replica = new Replica<TestTransition, TestSnapshotData>({
      id,
      peerIds: ids.filter((p) => p !== id),
      cluster,
      stateMachine: sm,
      noopTransition: { id: 'noop' },
      heartbeatTimeout: 50,
      electionTimeoutRange: [150, 300],
      storage,
      clock: net.clock,
      random: seededRandom(deriveSeed(seed, id)),
    });
    return { id, storage, sm, replica };
  });
  const run = async (ms: number, until?: () => boolean): Promise<void> => {
    for (const end = net.now() + ms; net.now() < end && !until?.();) {
      net.advance(1);
      for (const n of nodes) {
        if (failures.has(n.id)) continue;
        try {
          await n.replica.tick();
        } catch (e) {
          failures.set(n.id, e);
        }
      }
    }
  };
  const leader = () => nodes.find((n) => !failures.has(n.id) && n.replica.status.role === 'leader');
  return { net, nodes, sent, failures, run, leader };
}

describe('storage failures', () => {
  it('a leader whose save rejects: tick() rejects with that error, every later tick and start() too, and nothing of the batch is sent', async () => {
    const c = handCluster(111);
    await c.run(2_000, () => c.leader() !== undefined && c.nodes.every((n) => n.sm.lastIndex === 1));
    const leader = c.leader()!;
    leader.sm.submit({ id: 'ok' });
    await c.run(500, () => c.nodes.every((n) => n.sm.appliedIds.length === 1));
    expect(c.failures.size).toBe(0);

    const error = new Error('disk on fire');
    leader.storage.failWith = error;
    leader.sm.submit({ id: 'x' });
    const sentBefore = c.sent.length;
    c.net.advance(1);
    await expect(leader.replica.tick()).rejects.toBe(error);
    expect(c.sent.length, 'nothing sent by the failed tick').toBe(sentBefore);
    expect(leader.sm.statusesOf('x'), 'no queued before durable').toEqual([]);
    leader.storage.failWith = undefined; // even once storage recovers, the replica stays stopped
    const saves = leader.storage.saves;
    await expect(leader.replica.tick()).rejects.toBe(error);
    await expect(leader.replica.tick()).rejects.toBe(error);
    await expect(leader.replica.start()).rejects.toBe(error);
    expect(leader.storage.saves).toBe(saves);
    expect(c.sent.length).toBe(sentBefore);

    // The others elect a new leader; 'x' never reaches anyone.
    c.failures.set(leader.id, error);
    await c.run(2_000, () => c.leader() !== undefined);
    expect(c.leader()!.id).not.toBe(leader.id);
    await c.run(300);
    expect(
      c.sent.some((s) => s.message.type === 'append' && s.message.entries.some((e) => e.transition.id === 'x')),
    ).toBe(false);
    for (const n of c.nodes) expect(n.sm.appliedIds).not.toContain('x');
  });

  it('a follower whose save rejects sends no acknowledgement of the entries it could not store; the leader commits with the others', async () => {
    const c = handCluster(112);
    await c.run(2_000, () => c.leader() !== undefined && c.nodes.every((n) => n.sm.lastIndex === 1));
    const leader = c.leader()!;
    const follower = c.nodes.find((n) => n !== leader)!;
    const error = new Error('EIO');
    follower.storage.failWith = error;
    leader.sm.submit({ id: 'y' });
    await c.run(500, () => c.failures.has(follower.id));
    expect(c.failures.get(follower.id)).toBe(error);
    const failedAt = c.net.now();
    await c.run(500, () => leader.sm.appliedIds.includes('y'));
    expect(leader.sm.statusesOf('y')).toEqual(['queued', 'committed', 'applied']);
    // Its last sends came before the failing tick; none acknowledges 'y' (index 2).
    const mine = c.sent.filter((s) => s.from === follower.id);
    expect(mine.every((s) => s.at < failedAt)).toBe(true);
    expect(mine.some((s) => s.message.type === 'appendResponse' && s.message.success && s.message.index >= 2)).toBe(
      false,
    );
    await expect(follower.replica.tick()).rejects.toBe(error);
  });

  it('candidates whose save of the new term rejects never send a vote request', async () => {
    const c = handCluster(113);
    const error = new Error('read-only file system');
    for (const n of c.nodes) n.storage.failWith = error;
    await c.run(3_000, () => c.failures.size === 2);
    // Pre-votes change nothing durable, so they go out; a replica that wins one must save its
    // new term before it asks for real votes, fails, and sends nothing more. The last one left
    // can never win a pre-vote alone.
    expect(c.failures.size).toBe(2);
    for (const f of c.failures.values()) expect(f).toBe(error);
    expect(c.sent.length).toBeGreaterThan(0);
    for (const s of c.sent) expect(s.message.type === 'vote' ? s.message.pre : true, JSON.stringify(s)).toBe(true);
    expect(c.sent.filter((s) => s.message.type !== 'vote' && s.message.type !== 'voteResponse')).toEqual([]);
  });
});

describe('impossible persisted state', () => {
  const t = (id: string) => ({ id });
  const storageOf = (
    state: PersistentState<TestTransition, TestSnapshotData>,
  ): Storage<TestTransition, TestSnapshotData> => ({
    load: async () => state,
    save: async () => {},
  });
  const replicaOn = (state: PersistentState<TestTransition, TestSnapshotData>) =>
    new Replica<TestTransition, TestSnapshotData>({
      ...base(),
      stateMachine: new RecordingStateMachine(1),
      storage: storageOf(state),
      clock: () => 0,
      random: () => 0.5,
    });

  it('a consistent state loads', async () => {
    const r = replicaOn({
      term: 3,
      votedFor: 2,
      snapshot: { lastIncludedIndex: 2, lastIncludedTerm: 1, data: { count: 2, hash: 7 } },
      entries: [
        { index: 3, term: 1, kind: 'transition', transition: t('a') },
        { index: 4, term: 3, kind: 'transition', transition: t('b') },
      ],
    });
    await expect(r.tick()).resolves.toBeUndefined();
    expect(r.status).toMatchObject({ term: 3, lastLogIndex: 4, commitIndex: 2, lastApplied: 2 });
  });

  const empty: PersistentState<TestTransition, TestSnapshotData> = {
    term: 2,
    votedFor: undefined,
    snapshot: undefined,
    entries: [],
  };
  const cases: [string, PersistentState<TestTransition, TestSnapshotData>][] = [
    [
      'a gap',
      {
        term: 2,
        votedFor: undefined,
        snapshot: undefined,
        entries: [
          { index: 1, term: 1, kind: 'transition', transition: t('a') },
          { index: 3, term: 1, kind: 'transition', transition: t('b') },
        ],
      },
    ],
    [
      'not starting at 1',
      {
        term: 2,
        votedFor: undefined,
        snapshot: undefined,
        entries: [{ index: 2, term: 1, kind: 'transition', transition: t('a') }],
      },
    ],
    [
      'terms going back',
      {
        term: 3,
        votedFor: undefined,
        snapshot: undefined,
        entries: [
          { index: 1, term: 2, kind: 'transition', transition: t('a') },
          { index: 2, term: 1, kind: 'transition', transition: t('b') },
        ],
      },
    ],
    [
      'an entry above the current term',
      {
        term: 1,
        votedFor: undefined,
        snapshot: undefined,
        entries: [{ index: 1, term: 2, kind: 'transition', transition: t('a') }],
      },
    ],
    ['a negative term', { term: -1, votedFor: undefined, snapshot: undefined, entries: [] }],
    ['a fractional term', { term: 1.5, votedFor: undefined, snapshot: undefined, entries: [] }],
    [
      'entries overlapping the snapshot',
      {
        term: 2,
        votedFor: undefined,
        snapshot: { lastIncludedIndex: 5, lastIncludedTerm: 1, data: { count: 0, hash: 0 } },
        entries: [{ index: 5, term: 1, kind: 'transition', transition: t('a') }],
      },
    ],
    [
      'entries below the snapshot term',
      {
        term: 2,
        votedFor: undefined,
        snapshot: { lastIncludedIndex: 5, lastIncludedTerm: 2, data: { count: 0, hash: 0 } },
        entries: [{ index: 6, term: 1, kind: 'transition', transition: t('a') }],
      },
    ],
    [
      'a snapshot above the current term',
      {
        term: 1,
        votedFor: undefined,
        snapshot: { lastIncludedIndex: 5, lastIncludedTerm: 2, data: { count: 0, hash: 0 } },
        entries: [],
      },
    ],
    // Garbage from a user-written Storage: a CorruptStateError, not a TypeError from deep inside.
    ['undefined', undefined as never],
    ['null', null as never],
    ['entries: null', { ...empty, entries: null as never }],
    ['a null entry', { ...empty, entries: [null as never] }],
    ['an entry without a transition', { ...empty, entries: [{ index: 1, term: 1 } as never] }],
    [
      'an entry whose id is an object',
      { ...empty, entries: [{ index: 1, term: 1, kind: 'transition', transition: { id: {} } } as never] },
    ],
    [
      'a string term on an entry',
      { ...empty, entries: [{ index: 1, term: '1', kind: 'transition', transition: t('a') } as never] },
    ],
    ['votedFor "x"', { ...empty, votedFor: 'x' as never }],
    ['votedFor 1.5', { ...empty, votedFor: 1.5 }],
    ['a snapshot of null', { ...empty, snapshot: null as never }],
    ['a snapshot without data', { ...empty, snapshot: { lastIncludedIndex: 1, lastIncludedTerm: 1 } as never }],
    ['a term at 2^53 - 1', { ...empty, term: Number.MAX_SAFE_INTEGER }],
    ['a term above MAX_TERM_OR_INDEX', { ...empty, term: MAX_TERM_OR_INDEX + 1 }],
  ];
  it('a term at MAX_TERM_OR_INDEX loads (the bound itself is valid)', async () => {
    const last = { index: 1, term: MAX_TERM_OR_INDEX, kind: 'transition' as const, transition: t('a') };
    const r = replicaOn({ ...empty, term: MAX_TERM_OR_INDEX, entries: [last] });
    await expect(r.tick()).resolves.toBeUndefined();
    expect(r.status.term).toBe(MAX_TERM_OR_INDEX);
  });
  for (const [name, state] of cases) {
    it(`rejects ${name} with CorruptStateError on the first tick, and every later tick`, async () => {
      const r = replicaOn(state);
      const first = await r.tick().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(first).toBeInstanceOf(CorruptStateError);
      await expect(r.tick()).rejects.toBe(first);
    });
  }
});

/** Settles `p` if it settles without any tick (microtasks and one macrotask), else 'pending'. */
async function atOnce(p: Promise<unknown>): Promise<unknown> {
  const outcome = p.then(
    () => 'resolved',
    (e: unknown) => e,
  );
  return Promise.race([outcome, new Promise((resolve) => setImmediate(() => resolve('pending')))]);
}

describe('bad arguments to membership changes and transfers', () => {
  it('a non-integer id rejects at once with InvalidArgumentError, on any replica, before any tick', async () => {
    const r = new Replica<TestTransition, TestSnapshotData>({ ...base(), clock: () => 0, random: () => 0.5 });
    const calls: [string, () => Promise<void>][] = [
      ['removeMember("2")', () => r.removeMember('2' as never)],
      ['addMember("x")', () => r.addMember('x' as never)],
      ['addMember(NaN)', () => r.addMember(Number.NaN)],
      ['addMember(1.5)', () => r.addMember(1.5)],
      ['addMember(2^53)', () => r.addMember(2 ** 53)],
      ['removeMember(undefined)', () => r.removeMember(undefined as never)],
      ['transferLeadership({})', () => r.transferLeadership({} as never)],
    ];
    for (const [name, call] of calls) {
      const outcome = await atOnce(call());
      expect(outcome, name).toBeInstanceOf(InvalidArgumentError);
      expect((outcome as Error).message, name).toMatch(/replica id must be an integer/);
    }
  });

  it('leader: removeMember("2") does not resolve as if 2 were none; transferLeadership(99) rejects', async () => {
    const sim = new ScenarioSimulation({ size: 3, seed: 121 });
    const leader = await sim.stableLeader(1_500);
    expect(await atOnce(leader.replica.removeMember('2' as never))).toBeInstanceOf(InvalidArgumentError);
    const outcome = await sim.outcome(leader.replica.transferLeadership(99), 100);
    expect(outcome).toBeInstanceOf(InvalidArgumentError);
    expect((outcome as Error).message).toMatch(/replica 99 is not a voting member/);
    expect(raftOf(leader.replica)!.membership.voters).toEqual([1, 2, 3]);
  });
});

describe('invalid polled transitions', () => {
  const bad: unknown[] = [null, 42, {}, { id: {} }, { id: Number.NaN }, 'x', [{ id: 'in-an-array' }]];

  // The tick rejects naming them; none enters any log; the valid ones of the same poll commit; no election follows.
  it('on the leader: dropped before the log with InvalidTransitionError, the valid ones commit', async () => {
    const sim = new ScenarioSimulation({ size: 3, seed: 131 });
    const leader = await sim.stableLeader(1_500);
    const elections = sim.ids.reduce((n, id) => n + sim.node(id).replica.metrics.electionsStarted, 0);
    const logBefore = sim.logOf(leader.id).length;
    await sim.step();
    leader.sm.pending = [{ id: 'ok1' }, ...bad, { id: 'ok2' }] as TestTransition[];
    const error = await leader.replica.tick().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(InvalidTransitionError);
    expect((error as InvalidTransitionError).transitions).toEqual(bad);
    expect((error as Error).message).toMatch(/7 item\(s\) that are not transitions/);
    // Only the valid ones were appended, in order, and reported queued.
    expect(
      sim
        .logOf(leader.id)
        .slice(logBefore)
        .map((e) => e.split(':')[2]),
    ).toEqual(['ok1', 'ok2']);
    expect(leader.sm.statusesOf('ok1')).toEqual(['queued']);
    await sim.untilApplied(sim.ids, ['ok1', 'ok2'], 1_000);
    await sim.run(1_000);
    expect(sim.leader()!.id).toBe(leader.id);
    expect(sim.ids.reduce((n, id) => n + sim.node(id).replica.metrics.electionsStarted, 0)).toBe(elections);
    for (const id of sim.ids) {
      expect(sim.node(id).sm.appliedIds).toEqual(['ok1', 'ok2']);
      expect(sim.node(id).replica.metrics.messagesDropped).toBe(0);
    }
    // The next tick is a normal one: nothing is retried.
    await expect(leader.replica.tick()).resolves.toBeUndefined();
  });

  it('on a follower, and a poll that is no array: the same error; valid ones are abandoned not-leader', async () => {
    const sim = new ScenarioSimulation({ size: 3, seed: 132 });
    const leader = await sim.stableLeader(1_500);
    const f = sim.node(sim.ids.find((id) => id !== leader.id)!);
    f.sm.pending = [{ id: 'v' }, null] as TestTransition[];
    await expect(f.replica.tick()).rejects.toBeInstanceOf(InvalidTransitionError);
    expect(f.sm.statusesOf('v')).toEqual(['abandoned:not-leader']);
    f.sm.getPendingTransitions = () => undefined as never;
    const error = await f.replica.tick().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(InvalidTransitionError);
    expect((error as InvalidTransitionError).transitions).toEqual([undefined]);
  });

  it('a noopTransition that is not a transition is refused by the constructor', () => {
    expect(() => new Replica({ ...base(), noopTransition: { id: {} } as never })).toThrow(InvalidOptionsError);
  });
});

describe('terms that cannot overflow', () => {
  it('the bound is 2^53 - 2: its successor is the last exact integer', () => {
    expect(MAX_TERM_OR_INDEX + 1).toBe(Number.MAX_SAFE_INTEGER);
  });

  for (const term of [Number.MAX_SAFE_INTEGER]) {
    it(`a vote request with term ${term} (2^53 - 1) from a member is dropped; the cluster keeps electing`, async () => {
      const sim = new ScenarioSimulation({ size: 3, seed: 141 });
      let leader = await sim.stableLeader(1_500);
      const from = sim.ids.find((id) => id !== leader.id)!;
      const hostile = { type: 'vote', from, term, lastLogIndex: 1_000, lastLogTerm: term, pre: false, force: true };
      for (const id of sim.ids) if (id !== from) sim.inject(id, hostile);
      await sim.step();
      for (const id of sim.ids) expect(sim.node(id).replica.status.term).toBeLessThan(100);
      // Three leader crashes in a row: a new leader every time.
      for (let round = 0; round < 3; round++) {
        sim.crash(leader.id);
        const next = await sim.stableLeader(
          3_000,
          sim.ids.filter((id) => id !== leader.id),
        );
        expect(next.id).not.toBe(leader.id);
        sim.restart(leader.id);
        await sim.write(
          sim.ids.filter((id) => sim.node(id).up),
          [`w${round}`],
        );
        leader = await sim.stableLeader(3_000);
      }
    });
  }

  it('a term of MAX_TERM_OR_INDEX - 1 is valid: adopted, a leader is elected at the bound and commits', async () => {
    const sim = new ScenarioSimulation({ size: 3, seed: 142 });
    const leader = await sim.stableLeader(1_500);
    const from = sim.ids.find((id) => id !== leader.id)!;
    // A forced vote request (as after a transfer) at the bound minus one: everyone adopts the term.
    const request = {
      type: 'vote',
      from,
      term: MAX_TERM_OR_INDEX - 1,
      lastLogIndex: 0,
      lastLogTerm: 0,
      pre: false,
      force: true,
    };
    for (const id of sim.ids) if (id !== from) sim.inject(id, request);
    await sim.step();
    const next = await sim.stableLeader(3_000);
    expect(next.replica.status.term).toBe(MAX_TERM_OR_INDEX);
    await sim.write(sim.ids, ['at-the-bound']);
    // At the bound no replica campaigns again (there is no next term), and none fails.
    sim.crash(next.id);
    await sim.run(2_000);
    for (const id of sim.ids.filter((i) => i !== next.id)) {
      expect(sim.node(id).replica.status.term).toBe(MAX_TERM_OR_INDEX);
    }
  });
});

describe('a snapshot the state machine cannot load', () => {
  it('is dropped and counted, neither saved nor acknowledged, and the member restarts cleanly', async () => {
    const sim = new ScenarioSimulation({ size: 3, seed: 151 });
    const leader = await sim.stableLeader(1_500);
    await sim.write(sim.ids, ['a', 'b']);
    const f = sim.node(sim.ids.find((id) => id !== leader.id)!);
    const r = raftOf(f.replica)!;
    const before = stateOf(sim, f.id);
    f.sm.setSnapshot = () => {
      throw new TypeError('unreadable snapshot data');
    };
    const sentBefore = sim.sent.length;
    const garbage = { lastIncludedIndex: r.commitIndex + 10, lastIncludedTerm: r.term, data: { garbage: true } };
    sim.inject(f.id, wholeSnapshot(leader.id, r.term, garbage) satisfies TestMessage);
    await expect(f.replica.tick()).resolves.toBeUndefined();
    expect(f.replica.metrics.snapshotsRefused).toBe(1);
    expect(sim.sent.slice(sentBefore).filter((m) => m.from === f.id)).toEqual([]);
    expect(stateOf(sim, f.id)).toEqual(before);
    expect((await f.storage.load()).snapshot).toBeUndefined();
    // A restart finds nothing it cannot load, and the member catches up.
    sim.crash(f.id);
    sim.restart(f.id);
    await sim.write(sim.ids, ['c']);
    expect(sim.node(f.id).sm.appliedIds).toEqual(['a', 'b', 'c']);
  });
});
