/**
 * Drives single replicas by hand for the paper-conformance tests (tests/paper/):
 * - {@link PaperReplica}: the public `Replica` over a scripted cluster (the test pushes incoming
 *   messages and collects sent ones), a fake clock, a fixed `random`, a recording storage and a
 *   tracing state machine, all writing into one ordered trace;
 * - {@link RaftNet}: a few `Raft` cores exchanging messages in rounds, for scenarios of the paper
 *   that need several logs at once (Figures 7 and 8, fast backtracking).
 */
import {
  MemoryStorage,
  Replica,
  type LogEntry,
  type Cluster,
  type Message,
  type PersistentState,
  type ReplicaOptions,
  type Snapshot,
  type Storage,
  type StorageBatch,
  type TransitionId,
  type TransitionState,
} from '../../src/index.js';
import { appendResponse, snapshotRequest, voteResponse, type SnapshotRequest } from '../../src/core/message.js';
import type { AppendRequest, Entry } from '../../src/core/message.js';
import type { RaftConfig } from '../../src/core/config.js';
import { Raft } from '../../src/core/raft.js';
import { raftConfig as toRaftConfig, validateOptions } from '../../src/replica/options.js';
import { RecordingStateMachine, type TestSnapshotData, type TestTransition } from './recording-state-machine.js';

export type T = TestTransition;
export type D = TestSnapshotData;
export type Msg = Message<T, D>;
export type Sent = [to: number, message: Msg];

/** The entry at `index` of `term`; its transition id names both, so equal ids mean equal entries. */
export function entry(index: number, term: number, id = `e${index}t${term}`): LogEntry<T> & { kind: 'transition' } {
  return { index, term, transition: { id }, kind: 'transition' };
}

/** A log with the given terms, from index `from`. */
export function entries(terms: number[], from = 1): Entry<T>[] {
  return terms.map((term, i) => entry(from + i, term));
}

/** `count` copies of `term`, for building logs like Figure 7's. */
export const run = (term: number, count: number): number[] => Array<number>(count).fill(term);

/** InstallSnapshot carrying the whole of `s` in one chunk (its data's JSON text from offset 0). */
export function wholeSnapshot<S>(from: number, term: number, s: Snapshot<S>): SnapshotRequest {
  const { data, ...meta } = s;
  const text = JSON.stringify(data);
  return snapshotRequest({ from, term, snapshot: meta, offset: 0, size: text.length, chunk: text });
}

/** Yields to pending promise callbacks (no timers): enough for a tick to run as far as it can. */
export async function drainMicrotasks(turns = 500): Promise<void> {
  for (let i = 0; i < turns; i++) await Promise.resolve();
}

function describeBatch(b: StorageBatch<T, D>): string {
  const parts: string[] = [];
  if (b.hardState) parts.push(`hardState(term=${b.hardState.term},vote=${String(b.hardState.votedFor)})`);
  if (b.truncateFrom !== undefined) parts.push(`truncateFrom=${b.truncateFrom}`);
  if (b.append?.length) parts.push(`append=${b.append.map((e) => `${e.index}@${e.term}`).join(',')}`);
  if (b.snapshot) parts.push(`snapshot=${b.snapshot.lastIncludedIndex}@${b.snapshot.lastIncludedTerm}`);
  return parts.join(' ');
}

/** A cluster whose inbox the test fills and whose sent messages the test collects. */
export class ScriptedCluster implements Cluster<T, D> {
  inbox: Msg[] = [];
  outbox: Sent[] = [];
  readonly leaders: (number | undefined)[] = [];
  /** Every registerMembership call (kept out of the trace: the paper's plain Raft has no membership changes). */
  readonly memberships: number[][] = [];
  constructor(private readonly trace: string[]) {}
  sendMessage(to: number, m: Msg): void {
    this.trace.push(`send ${m.type} to ${to}`);
    this.outbox.push([to, structuredClone(m)]);
  }
  receiveMessages(): Msg[] {
    const m = this.inbox;
    this.inbox = [];
    return m.map((x) => structuredClone(x));
  }
  halt(): boolean {
    return true;
  }
  registerLeader(id: number | undefined): void {
    this.trace.push(`leader ${String(id)}`);
    this.leaders.push(id);
  }
  registerMembership(ids: number[]): void {
    this.memberships.push([...ids]);
  }
}

/**
 * A MemoryStorage that records every batch and when it became durable. `hold()` keeps later
 * saves pending until `release()`, so a test can see what the replica does while a save is
 * not yet durable.
 */
export class RecordingStorage implements Storage<T, D> {
  readonly inner = new MemoryStorage<T, D>();
  readonly batches: StorageBatch<T, D>[] = [];
  trace: string[] = [];
  private held: (() => void)[] | undefined;
  pending = 0;

  hold(): void {
    this.held ??= [];
  }
  release(): void {
    const held = this.held ?? [];
    this.held = undefined;
    for (const resolve of held) resolve();
  }

  load(): Promise<PersistentState<T, D>> {
    return this.inner.load();
  }

  async save(batch: StorageBatch<T, D>): Promise<void> {
    const copy = structuredClone(batch);
    this.trace.push(`save ${describeBatch(copy)}`);
    this.pending++;
    if (this.held) await new Promise<void>((resolve) => this.held!.push(resolve));
    await this.inner.save(copy);
    this.pending--;
    this.batches.push(copy);
    this.trace.push(`durable ${describeBatch(copy)}`);
  }

  /** What a restarted replica would load. */
  state(): Promise<PersistentState<T, D>> {
    return this.inner.load();
  }
}

const stateName = (s: TransitionState): string => (s.status === 'abandoned' ? `abandoned:${s.reason}` : s.status);

/** The recording state machine, also writing its calls into the shared trace. */
export class TracingStateMachine extends RecordingStateMachine {
  readonly appliedAt: [index: number, id: string][] = [];
  readonly snapshotCalls: [index: number, term: number][] = [];
  readonly setSnapshots: Snapshot<D>[] = [];
  constructor(
    id: number,
    private readonly trace: string[],
  ) {
    super(id);
  }
  override applyTransition(t: T, index: number): void {
    this.trace.push(`apply ${index} ${t.id}`);
    this.appliedAt.push([index, t.id]);
    super.applyTransition(t, index);
  }
  override registerTransitionState(id: TransitionId, state: TransitionState): void {
    this.trace.push(`state ${String(id)} ${stateName(state)}`);
    super.registerTransitionState(id, state);
  }
  override createSnapshot(index: number, term: number): Snapshot<D> {
    this.snapshotCalls.push([index, term]);
    return super.createSnapshot(index, term);
  }
  override setSnapshot(s: Snapshot<D>): void {
    this.setSnapshots.push(s);
    super.setSnapshot(s);
  }
}

export interface PaperReplicaOptions {
  id?: number;
  peerIds?: number[];
  heartbeatTimeout?: number;
  electionTimeoutRange?: [number, number];
  random?: () => number;
  snapshotDelta?: number;
  maxEntriesPerMessage?: number;
  maxBytesPerMessage?: number;
  maxInflightBytes?: number;
  catchUpTimeout?: number;
  /** Pass the storage of a crashed replica to restart it. */
  storage?: RecordingStorage;
  /** Saved into a new storage before the first tick. */
  state?: { term?: number; votedFor?: number; entries?: Entry<T>[]; snapshot?: Snapshot<D> };
  /** The clock's reading at the first tick. */
  now?: number;
  /**
   * The dissertation's additions (tests/paper/beyond.test.ts), all off by default: the paper's
   * plain Raft, so the paper's own rules are tested without them.
   */
  preVote?: boolean;
  checkQuorum?: boolean;
  join?: boolean;
}

/**
 * One `Replica` driven by hand. Defaults: id 1, peers 2 and 3, heartbeat 50 ms, election
 * timeout [150, 300] ms, `random` always 0 (so the election timeout is exactly 150 ms),
 * pre-vote, check-quorum and join off.
 */
export class PaperReplica {
  readonly trace: string[] = [];
  readonly cluster = new ScriptedCluster(this.trace);
  readonly sm: TracingStateMachine;
  readonly storage: RecordingStorage;
  readonly replica: Replica<T, D>;
  readonly id: number;
  readonly peerIds: number[];
  now: number;

  private constructor(readonly options: PaperReplicaOptions) {
    this.id = options.id ?? 1;
    this.peerIds = options.peerIds ?? [2, 3].map((p) => (p === this.id ? 1 : p));
    this.now = options.now ?? 0;
    this.storage = options.storage ?? new RecordingStorage();
    this.storage.trace = this.trace;
    this.sm = new TracingStateMachine(this.id, this.trace);
    const o: ReplicaOptions<T, D> = {
      id: this.id,
      peerIds: this.peerIds,
      cluster: this.cluster,
      stateMachine: this.sm,
      noopTransition: { id: 'noop' },
      heartbeatTimeout: options.heartbeatTimeout ?? 50,
      electionTimeoutRange: options.electionTimeoutRange ?? [150, 300],
      storage: this.storage,
      clock: () => this.now,
      random: options.random ?? (() => 0),
      snapshotDelta: options.snapshotDelta ?? 0,
      ...(options.maxEntriesPerMessage ? { maxEntriesPerMessage: options.maxEntriesPerMessage } : {}),
      ...(options.maxBytesPerMessage ? { maxBytesPerMessage: options.maxBytesPerMessage } : {}),
      ...(options.maxInflightBytes ? { maxInflightBytes: options.maxInflightBytes } : {}),
      ...(options.catchUpTimeout ? { catchUpTimeout: options.catchUpTimeout } : {}),
      // The paper's plain Raft unless a test of the dissertation's rules asks otherwise.
      preVote: options.preVote ?? false,
      checkQuorum: options.checkQuorum ?? false,
      join: options.join ?? false,
    };
    this.replica = new Replica(o);
  }

  /** Builds the replica (seeding its storage) and runs its first tick, which loads and starts the election timer. */
  static async create(options: PaperReplicaOptions = {}): Promise<PaperReplica> {
    const r = new PaperReplica(options);
    const s = options.state;
    if (s) {
      const es = s.entries ?? [];
      const term = s.term ?? Math.max(0, ...es.map((e) => e.term), s.snapshot?.lastIncludedTerm ?? 0);
      await r.storage.inner.save({
        hardState: { term, votedFor: s.votedFor },
        ...(es.length ? { append: es } : {}),
        ...(s.snapshot ? { snapshot: s.snapshot } : {}),
      });
    }
    await r.tick();
    r.trace.length = 0;
    return r;
  }

  /** The same replica after a crash: a new `Replica` over the same storage, at the same clock. */
  restart(options: PaperReplicaOptions = {}): Promise<PaperReplica> {
    return PaperReplica.create({ ...this.options, ...options, storage: this.storage, state: undefined, now: this.now });
  }

  get status(): Replica<T, D>['status'] {
    return this.replica.status;
  }

  /** The replica's Raft core, for rules only observable inside. */
  get raft(): Raft<T, D> {
    return (this.replica as unknown as { raft: Raft<T, D> }).raft;
  }

  /** The replica's log after its snapshot, as (index, term, id) triples. */
  log(): [number, number, string][] {
    const log = this.raft.log;
    return log.slice(log.snapshotIndex + 1, log.lastIndex).map((e) => [e.index, e.term, e.transition.id]);
  }

  /** Moves the clock to `at` (if given) and runs one tick. */
  async tick(at?: number): Promise<void> {
    if (at !== undefined) this.now = at;
    await this.replica.tick();
  }

  /** Delivers messages and runs one tick at the current time (or `at`). */
  async deliver(messages: Msg[], at?: number): Promise<void> {
    this.cluster.inbox.push(...messages);
    await this.tick(at);
  }

  /** Takes every message sent since the last call. */
  take(): Sent[] {
    const out = this.cluster.outbox;
    this.cluster.outbox = [];
    return out;
  }

  /** Takes the messages sent since the last call and returns those of `type` (to anyone). */
  takeOfType<K extends Msg['type']>(type: K): [number, Extract<Msg, { type: K }>][] {
    return this.take().filter(([, m]) => m.type === type) as [number, Extract<Msg, { type: K }>][];
  }

  /** Fires the election timeout (with `random` 0 it is at most `max` ms away) and takes the messages. */
  async campaign(): Promise<Sent[]> {
    const [, max] = this.options.electionTimeoutRange ?? [150, 300];
    await this.tick(this.now + max);
    return this.take();
  }

  /** Campaigns and receives a vote from each of `voters`; it leads afterwards if they are enough. */
  async elect(voters: number[] = [this.peerIds[0]!]): Promise<Sent[]> {
    await this.campaign();
    const term = this.status.term;
    await this.deliver(voters.map((v) => voteResponse({ from: v, term, granted: true })));
    return this.take();
  }
}

/** The success answer a correct follower gives to an AppendEntries it accepts whole. */
export function ack(from: number, m: AppendRequest<T>): Msg {
  return appendResponse({ from, term: m.term, success: true, index: m.prevLogIndex + m.entries.length });
}

// ---------------------------------------------------------------------------------------------
// RaftNet: several Raft cores, messages delivered in rounds.

export interface RaftState {
  term: number;
  votedFor?: number | undefined;
  entries: Entry<T>[];
}

const silentCluster: Cluster<T, D> = {
  sendMessage() {},
  receiveMessages: () => [],
  halt: () => true,
  registerLeader() {},
};
const silentStateMachine = { registerTransitionState() {}, applyTransition() {}, getPendingTransitions: () => [] };

/** The validated configuration a `Raft` core takes, as the `Replica` builds it. */
export function raftConfig(id: number, peerIds: number[], extra: Partial<ReplicaOptions<T, D>> = {}): RaftConfig<T> {
  return toRaftConfig(
    validateOptions<T, D>({
      id,
      peerIds,
      cluster: silentCluster,
      stateMachine: silentStateMachine,
      noopTransition: { id: 'noop' },
      heartbeatTimeout: 50,
      electionTimeoutRange: [150, 300],
      clock: () => 0,
      random: () => 0,
      // The paper's plain Raft; pre-vote and check-quorum have tests of their own.
      preVote: false,
      checkQuorum: false,
      ...extra,
    }),
  );
}

/**
 * A cluster of `Raft` cores without `Replica`s: every core's outbox is drained after each step,
 * its storage batch counted durable at once (as with MemoryStorage). A round delivers every
 * message in flight; a crashed replica or a cut link drops messages. Every commit is recorded,
 * and an index committed with two different entries is a violation.
 */
export class RaftNet {
  now = 0;
  readonly cores = new Map<number, Raft<T, D>>();
  readonly reports = new Map<number, [TransitionId, TransitionState][]>();
  inflight: { from: number; to: number; m: Msg }[] = [];
  readonly violations: string[] = [];
  /** index → the entry (term and id) some replica counted committed there. */
  readonly committed = new Map<number, string>();
  rounds = 0;
  private readonly down = new Set<number>();
  private readonly cuts = new Set<string>();

  constructor(
    readonly ids: number[],
    states: Record<number, RaftState>,
    private readonly extra: Partial<ReplicaOptions<T, D>> = {},
  ) {
    for (const id of ids) {
      this.reports.set(id, []);
      this.build(id, states[id] ?? { term: 0, entries: [] });
    }
  }

  private build(id: number, s: RaftState): void {
    const config = raftConfig(
      id,
      this.ids.filter((p) => p !== id),
      this.extra,
    );
    const raft = new Raft<T, D>(config, {
      ...s,
      votedFor: s.votedFor,
      snapshot: undefined,
      entries: s.entries.map((e) => ({ ...e })),
    });
    raft.start(this.now);
    this.cores.set(id, raft);
  }

  raft(id: number): Raft<T, D> {
    return this.cores.get(id)!;
  }

  /** Terms of the log of `id`, from index 1. */
  terms(id: number): number[] {
    return this.entriesOf(id).map((e) => e.term);
  }

  entriesOf(id: number): Entry<T>[] {
    const log = this.raft(id).log;
    return log.slice(log.snapshotIndex + 1, log.lastIndex);
  }

  /** A crash: the replica stops, its messages in flight are lost. */
  crash(id: number): void {
    this.down.add(id);
    this.inflight = this.inflight.filter((x) => x.from !== id && x.to !== id);
  }

  /** A restart from what was durable (term, vote, log): volatile state (role, commit index) is lost. */
  restart(id: number): void {
    const r = this.raft(id);
    this.down.delete(id);
    this.build(id, { term: r.term, votedFor: r.votedFor, entries: this.entriesOf(id) });
  }

  cut(a: number, b: number): void {
    this.cuts.add(`${Math.min(a, b)}-${Math.max(a, b)}`);
  }
  heal(): void {
    this.cuts.clear();
  }
  private linked(a: number, b: number): boolean {
    return !this.down.has(a) && !this.down.has(b) && !this.cuts.has(`${Math.min(a, b)}-${Math.max(a, b)}`);
  }

  /** Fires the election timeout of `id` (the clock moves past any election timeout). */
  timeout(id: number): void {
    this.now += 1000;
    this.raft(id).tick(this.now);
    this.settle(id);
  }

  /** Fires the heartbeat timer of leader `id`. */
  heartbeat(id: number): void {
    this.now += 50;
    this.raft(id).tick(this.now);
    this.settle(id);
  }

  /** Hands `m` to `to` directly, as if it had arrived. */
  step(to: number, m: Msg): void {
    this.raft(to).receive(structuredClone(m), this.now);
    this.settle(to);
  }

  /** Proposes transitions on leader `id`. */
  propose(id: number, ...transitionIds: string[]): void {
    this.raft(id).propose(transitionIds.map((t) => ({ id: t })));
    this.settle(id);
  }

  /** Delivers every message now in flight (dropping those on cut links or to crashed replicas); returns how many arrived. */
  round(): number {
    const batch = this.inflight;
    this.inflight = [];
    let delivered = 0;
    for (const { from, to, m } of batch) {
      if (!this.linked(from, to)) continue;
      delivered++;
      this.step(to, m);
    }
    this.rounds++;
    return delivered;
  }

  /** Runs rounds until no message is in flight; returns how many rounds it took. */
  settleAll(maxRounds = 1000): number {
    let n = 0;
    while (this.inflight.length > 0) {
      if (++n > maxRounds) throw new Error(`no quiet after ${maxRounds} rounds`);
      this.round();
    }
    return n;
  }

  /** What the Replica does after each step: take the Ready, count its batch durable at once, send, report. */
  settle(id: number): void {
    const r = this.raft(id);
    const ready = r.ready();
    r.advance(ready);
    for (const [to, m] of ready.messages)
      if (this.linked(id, to)) this.inflight.push({ from: id, to, m: structuredClone(m) });
    const reports = this.reports.get(id)!;
    for (let i = 0; i < ready.reports.length; i += 2)
      reports.push([ready.reports[i] as TransitionId, ready.reports[i + 1] as TransitionState]);
    for (let i = r.log.snapshotIndex + 1; i <= r.commitIndex; i++) {
      const e = r.log.entry(i)!;
      const key = `${e.term}:${e.transition.id}`;
      const known = this.committed.get(i);
      if (known === undefined) this.committed.set(i, key);
      else if (known !== key)
        this.violations.push(`index ${i} committed as ${known} and later as ${key} (on replica ${id})`);
    }
  }
}
