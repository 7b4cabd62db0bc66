import type { Snapshot, StateMachine, TransitionId, TransitionState } from 'tickraft';

/** Where a member listens: host and port. */
export interface KvAddress { host: string; port: number }

/** A member's Raft (TCP) and HTTP addresses, replicated through the log so every replica knows them. */
export interface MemberAddresses { raft: KvAddress; http: KvAddress }

/**
 * A key-value command. `client` and `seq` make retries safe: a command is applied once per
 * (client, seq). `member-address` records where a member listens, on every replica (the leader
 * commits it before adding the member, so whoever leads next can reach it).
 */
export type KvCommand =
  | { id: string; client: string; seq: number; op: 'put'; key: string; value: string }
  | { id: string; client: string; seq: number; op: 'delete'; key: string }
  | { id: string; client: string; seq: number; op: 'get'; key: string }
  | { id: string; op: 'member-address'; member: number; raft: KvAddress; http: KvAddress }
  | { id: 'noop'; op: 'noop' };

/** What a command returns: the value read (get), or the previous value (put, delete). */
export type KvResult = string | undefined;

/** The replicated state of a snapshot: the map and each client's last applied command. */
export interface KvSnapshot {
  entries: [string, string][];
  sessions: [string, { seq: number; result: KvResult }][];
  /** Member addresses learned through the log (absent in snapshots of older versions). */
  addresses?: [number, MemberAddresses][];
}

/** The noop a new leader appends; it changes nothing. */
export const KV_NOOP: KvCommand = { id: 'noop', op: 'noop' };

/**
 * Why a submitted command failed: this replica does not lead, or it lost its place in the log.
 * `definite` (the default) means this submission will never be applied: Raft abandoned it, or
 * it was refused before reaching the log. It is false when only the wait ended (the caller
 * stopped waiting, a retry took over the wait, the server is stopping): the command may still
 * be applied.
 */
export class KvNotLeader extends Error {
  /** `leaderId`: the leader the replica knows of, when the error says so. */
  constructor(readonly reason: string, readonly leaderId?: number, readonly definite = true) {
    super(`${definite ? 'not applied' : 'outcome unknown'}: ${reason}`);
  }
}

/** A membership change was refused because another one is in progress (HTTP 409). */
export class KvConflict extends Error {}

/** A membership change or transfer that did not finish in the replica's own time limit (HTTP 504). */
export class KvTimeout extends Error {}

/**
 * A replicated key-value map. Writes go through the log; reads are served from the local map
 * after `replica.readIndex()` (see http.ts), so every answer is linearizable. Each client numbers its commands; a command retried after a timeout (same
 * client and seq) is applied once, and the retry gets the first application's result.
 */
export class KvStateMachine implements StateMachine<KvCommand, KvSnapshot> {
  readonly data = new Map<string, string>();
  /** Member addresses applied from the log (or a snapshot). */
  readonly addresses = new Map<number, MemberAddresses>();
  /** Called for each member address applied (or loaded from a snapshot), on every replica. */
  onMemberAddress: ((member: number, addresses: MemberAddresses) => void) | undefined;
  private readonly sessions = new Map<string, { seq: number; result: KvResult }>();
  private pending: KvCommand[] = [];
  private readonly waiting = new Map<TransitionId, { resolve: (r: KvResult) => void; reject: (e: Error) => void }>();
  private lastResult: KvResult = undefined;
  appliedIndex = 0;

  /** Queues a command; resolves with its result once applied here, rejects if abandoned. */
  submit(command: KvCommand): Promise<KvResult> {
    this.pending.push(command);
    // A retry with the same id supersedes the earlier wait: its answer goes to the latest caller.
    this.waiting.get(command.id)?.reject(new KvNotLeader('superseded by a retry', undefined, false));
    return new Promise((resolve, reject) => this.waiting.set(command.id, { resolve, reject }));
  }

  getPendingTransitions(): KvCommand[] {
    const p = this.pending;
    this.pending = [];
    return p;
  }

  applyTransition(c: KvCommand, index: number): void {
    this.appliedIndex = index;
    if (c.op === 'noop') return;
    if (c.op === 'member-address') {
      const a = { raft: c.raft, http: c.http };
      this.addresses.set(c.member, a);
      this.lastResult = undefined;
      this.onMemberAddress?.(c.member, a);
      return;
    }
    const session = this.sessions.get(c.client);
    if (session && session.seq >= c.seq) {
      // A retry of a command already applied: answer as the first time, change nothing.
      this.lastResult = session.seq === c.seq ? session.result : undefined;
      return;
    }
    const before = this.data.get(c.key);
    if (c.op === 'put') this.data.set(c.key, c.value);
    else if (c.op === 'delete') this.data.delete(c.key);
    this.lastResult = before;
    this.sessions.set(c.client, { seq: c.seq, result: before });
  }

  registerTransitionState(id: TransitionId, state: TransitionState): void {
    const waiter = this.waiting.get(id);
    if (!waiter) return;
    if (state.status === 'applied') {
      this.waiting.delete(id);
      waiter.resolve(this.lastResult);
    } else if (state.status === 'abandoned') {
      this.waiting.delete(id);
      waiter.reject(new KvNotLeader(state.reason));
    }
  }

  createSnapshot(lastIncludedIndex: number, lastIncludedTerm: number): Snapshot<KvSnapshot> {
    return { lastIncludedIndex, lastIncludedTerm, data: { entries: [...this.data], sessions: [...this.sessions], addresses: [...this.addresses] } };
  }

  setSnapshot(s: Snapshot<KvSnapshot>): void {
    this.data.clear();
    for (const [k, v] of s.data.entries) this.data.set(k, v);
    this.sessions.clear();
    for (const [c, v] of s.data.sessions) this.sessions.set(c, v);
    this.addresses.clear();
    for (const [m, a] of s.data.addresses ?? []) {
      this.addresses.set(m, a);
      this.onMemberAddress?.(m, a);
    }
    this.appliedIndex = s.lastIncludedIndex;
  }

  /** Stops waiting for one command (its caller gave up); the command may still be applied. */
  forget(id: TransitionId): void {
    this.waiting.get(id)?.reject(new KvNotLeader('the caller stopped waiting', undefined, false));
    this.waiting.delete(id);
  }

  /** Rejects every command still waiting: call when the replica stops. */
  abandonAll(reason: string): void {
    for (const w of this.waiting.values()) w.reject(new KvNotLeader(reason, undefined, false));
    this.waiting.clear();
  }
}
