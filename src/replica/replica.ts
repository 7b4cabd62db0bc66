import { Mutex } from 'async-mutex';
import { MemoryStorage } from '../storage/memory.js';
import { NotLeaderError } from '../core/errors.js';
import { checkPersistentState } from '../core/check-state.js';
import { isValidMessage } from '../core/validate.js';
import type { Entry } from '../core/message.js';
import { validateOptions, type Config, type ReplicaOptions } from '../core/options.js';
import { Raft, type Pending, type ReplicaMetrics } from '../core/raft.js';
import type { Storage } from '../core/storage.js';
import type { ReplicaId, StateMachineTransition, TransitionState } from '../core/types.js';

/** A snapshot of where a replica stands, read through {@link Replica.status}. */
export interface ReplicaStatus {
  /** This replica's id. */
  id: ReplicaId;
  /** Its role now; a replica campaigning (pre-vote or vote) is a candidate. */
  role: 'follower' | 'candidate' | 'leader';
  /** Its current term. */
  term: number;
  /** The leader this replica knows of, if any. */
  leaderId: ReplicaId | undefined;
  /** The highest index known committed. */
  commitIndex: number;
  /** The highest index applied to the state machine (or covered by its snapshot). */
  lastApplied: number;
  /** The index of the last entry in its log. */
  lastLogIndex: number;
}

const APPLIED: TransitionState = { status: 'applied' };

/**
 * One member of a Raft cluster: it polls the {@link Cluster} for messages and the
 * {@link StateMachine} for transitions, elects a leader, replicates, and applies.
 *
 * Every call into the state machine and the cluster runs under one lock, and application code
 * can run under the same lock with {@link Replica.runExclusive}: an HTTP handler that queues a
 * transition then never interleaves with an awaited `applyTransition`.
 *
 * @example
 * ```ts
 * const replica = new Replica({
 *   id: 1, peerIds: [2, 3], cluster, stateMachine, noopTransition: { id: 'noop' },
 *   heartbeatTimeout: 50, electionTimeoutRange: [150, 300],
 * });
 * await replica.start(); // until cluster.halt() returns true
 * ```
 */
export class Replica<T extends StateMachineTransition, D = unknown> {
  private readonly config: Config<T, D>;
  private readonly storage: Storage<T, D>;
  /** Requests from the application, handed to the algorithm at the start of the next tick. */
  private requests: ((raft: Raft<T, D>) => void)[] = [];
  /** Serializes calls into user code (state machine, cluster) with {@link Replica.runExclusive}. */
  private readonly lock = new Mutex();
  /** One tick at a time, whoever drives them: each waits for the one before. */
  private ticking: Promise<unknown> = Promise.resolve();
  private raft: Raft<T, D> | undefined;
  private failure: { error: unknown } | undefined;
  private endSleep: (() => void) | undefined;
  private woken = false;
  private held = false;

  /** Validates the options; throws {@link InvalidOptionsError} naming the first invalid one. */
  constructor(options: ReplicaOptions<T, D>) {
    this.config = validateOptions(options);
    this.storage = options.storage ?? new MemoryStorage<T, D>();
    this.config.cluster.setWakeup?.(() => this.wake());
  }

  /** Where this replica stands now. */
  get status(): ReplicaStatus {
    const r = this.raft;
    return {
      id: this.config.id, role: r?.role.kind ?? 'follower', term: r?.term ?? 0, leaderId: r?.leaderId,
      commitIndex: r?.commitIndex ?? 0, lastApplied: r?.lastApplied ?? 0, lastLogIndex: r?.log.lastIndex ?? 0,
    };
  }

  /** Counters worth watching (messages, elections, entries, snapshots); zero before the first tick. */
  get metrics(): Readonly<ReplicaMetrics> {
    return this.raft ? { ...this.raft.metrics } : { messagesIn: 0, messagesOut: 0, messagesDropped: 0, electionsStarted: 0, entriesAppended: 0, snapshotsCreated: 0, snapshotsInstalled: 0 };
  }

  /**
   * Runs `fn` under the lock that serializes every call into the state machine and the
   * cluster. Use it for code that touches what those calls touch (for example, queueing a
   * transition from a request handler). `fn` must not call back into this method.
   */
  runExclusive<R>(fn: () => R | Promise<R>): Promise<R> {
    return this.lock.runExclusive(fn);
  }

  /**
   * Resolves once this replica's state machine reflects every transition committed before the
   * call, without writing to the log (dissertation §6.4): the leader confirms it still leads
   * with one heartbeat round, shared by every read that arrived meanwhile, and waits until its
   * commit index (at least its first commit of the term) is applied. Rejects with
   * {@link NotLeaderError} on a replica that does not lead, or that stops leading meanwhile.
   * Settles during a later tick, under {@link Replica.start} or a hand-driven {@link Replica.tick}.
   */
  readIndex(): Promise<void> {
    return this.request((raft, p) => raft.read(p));
  }

  /**
   * Adds a voting member (single-server change, dissertation §4.1); leader only, one change at
   * a time. The new member, started with `join: true`, first catches up as a non-voter; the
   * promise resolves when the configuration that includes it is committed, at once if it is a
   * member already (so a client may retry). Rejects if another change is in progress.
   */
  addMember(id: ReplicaId): Promise<void> {
    return this.request((raft, p) => raft.changeMembership(id, true, p));
  }

  /**
   * Removes a voting member; leader only, one change at a time; resolves when the change is
   * committed, at once if `id` is not a member. A leader that removes itself steps down then.
   */
  removeMember(id: ReplicaId): Promise<void> {
    return this.request((raft, p) => raft.changeMembership(id, false, p));
  }

  /**
   * Hands leadership to `to` (dissertation §3.10): the leader abandons new transitions
   * (`not-leader`), brings `to` up to date and tells it to campaign at once. Resolves when `to`
   * leads; rejects if it does not within one maximum election timeout.
   */
  transferLeadership(to: ReplicaId): Promise<void> {
    return this.request((raft, p) => raft.transferLeadership(to, p));
  }

  private request(fn: (raft: Raft<T, D>, p: Pending) => void): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.requests.push((raft) => fn(raft, { resolve, reject }));
      this.wake();
    });
  }

  /** Ends the idle sleep of {@link Replica.start} at once: call it when work arrives. */
  wake(): void {
    this.woken = true;
    this.endSleep?.();
  }

  /**
   * Runs the tick loop until `cluster.halt()` returns true. A busy replica ticks back to back
   * (yielding to I/O between ticks); an idle one sleeps `tickInterval` ms or until woken.
   * Rejects with the storage's error if a save fails, or with an error thrown by user code.
   */
  async start(): Promise<void> {
    for (;;) {
      const busy = await this.tickOnce(true);
      if (busy === undefined) return;
      if (busy || this.woken) await new Promise<void>((resolve) => setImmediate(resolve));
      else await this.sleep(this.config.tickInterval);
      this.woken = false;
    }
  }

  /**
   * One round of the loop: loads persisted state on the first call; receives all messages,
   * fires due timers, polls transitions, persists, sends, reports, applies. `start()` is a loop
   * of `tick()`; a test may drive `tick()` itself with a virtual clock. After a storage failure
   * every later call rejects with the same error.
   */
  async tick(): Promise<void> {
    await this.tickOnce(false);
  }

  /**
   * Runs a phase of calls into user code under the lock. Code that runs without a pause cannot
   * interleave with anything, so the lock is taken only once user code returns a promise
   * ({@link Replica.hold}, just before awaiting it): the common all-synchronous phase costs nothing.
   */
  private async exclusive<R>(fn: () => Promise<R>): Promise<R> {
    while (this.lock.isLocked()) await this.lock.waitForUnlock();
    try {
      return await fn();
    } finally {
      if (this.held) this.lock.release();
      this.held = false;
    }
  }

  /** Takes the lock before the phase awaits user code; it is free, so `acquire` takes it at once. */
  private hold(): void {
    if (!this.held) void this.lock.acquire();
    this.held = true;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => { clearTimeout(timer); this.endSleep = undefined; resolve(); };
      const timer = setTimeout(done, ms);
      this.endSleep = done;
    });
  }

  /** Returns whether the tick found work, so `start()` knows whether to sleep; undefined once `cluster.halt()` (asked if `halting`). */
  private tickOnce(halting: boolean): Promise<boolean | undefined> {
    const run = this.ticking.then(async () => {
      if (this.failure) throw this.failure.error;
      const raft = this.raft ?? (await this.durably(() => this.load()));
      const { cluster, stateMachine } = this.config;
      const polled = await this.exclusive(async () => {
        if (halting && cluster.halt()) return undefined;
        const received = cluster.receiveMessages();
        const messages = received instanceof Promise ? (this.hold(), await received) : received;
        const polled = stateMachine.getPendingTransitions();
        return [messages, polled instanceof Promise ? (this.hold(), await polled) : polled] as const;
      });
      if (!polled) return undefined;
      const [messages, pending] = polled;
      const now = this.config.clock();
      raft.metrics.messagesIn += messages.length;
      for (const m of messages) {
        if (isValidMessage<T, D>(m, raft.membership.known) && m.from !== this.config.id) raft.step(m, now);
        else raft.metrics.messagesDropped++;
      }
      raft.tick(now);
      const requests = this.requests;
      this.requests = [];
      for (const r of requests) r(raft);
      raft.propose(pending); // a non-leader abandons them
      raft.flush();
      const batch = raft.takeBatch();
      if (batch) await this.durably(() => this.storage.save(batch));
      raft.persisted();
      const { messages: out, reports, leaderChanges, membershipChanged } = raft;
      raft.messages = [];
      raft.reports = [];
      raft.leaderChanges = [];
      raft.membershipChanged = false;
      raft.metrics.messagesOut += out.length;
      const applied = await this.exclusive(async () => {
        for (const [to, m] of out) cluster.sendMessage(to, m);
        for (const id of leaderChanges) cluster.registerLeader(id);
        if (membershipChanged) cluster.registerMembership?.([...raft.membership.voters]);
        for (const [id, state] of reports) {
          const done = stateMachine.registerTransitionState(id, state);
          if (done) (this.hold(), await done); // Await only a promise: a microtask per report would cost more than the report.
        }
        const count = await this.apply(raft);
        raft.settleReads();
        return count;
      });
      return messages.length + pending.length + out.length + applied > 0 || batch !== undefined;
    });
    this.ticking = run.catch(() => undefined);
    return run;
  }

  /** Runs a storage step; its failure stops the replica for good, since memory is now ahead of disk. */
  private async durably<R>(fn: () => Promise<R>): Promise<R> {
    try {
      return await fn();
    } catch (error) {
      this.failure = { error };
      throw error;
    }
  }

  private async load(): Promise<Raft<T, D>> {
    const state = await this.storage.load();
    checkPersistentState(state);
    const sm = this.config.stateMachine;
    const stored = state.snapshot;
    const seed = stored ? undefined : await this.lock.runExclusive(async () => sm.getSnapshot?.());
    const raft = new Raft<T, D>(this.config, state.term, state.votedFor, stored, state.entries as Entry<T>[]);
    if (seed) raft.seed(seed);
    await this.lock.runExclusive(async () => {
      if (stored) await this.setSnapshot(stored);
      this.config.cluster.registerMembership?.([...raft.membership.voters]);
    });
    raft.start(this.config.clock());
    this.raft = raft;
    return raft;
  }

  private setSnapshot(s: NonNullable<Raft<T, D>['snapshot']>): void | Promise<void> {
    const sm = this.config.stateMachine;
    if (!sm.setSnapshot) throw new TypeError('a snapshot must be loaded, but stateMachine.setSnapshot is not implemented');
    return sm.setSnapshot(s);
  }

  /** Applies committed entries in index order, after loading a snapshot from the leader if one came. Runs under the lock. */
  private async apply(raft: Raft<T, D>): Promise<number> {
    const sm = this.config.stateMachine;
    const install = raft.snapshotToInstall;
    raft.snapshotToInstall = undefined;
    if (install && install.lastIncludedIndex > raft.lastApplied) {
      const done = this.setSnapshot(install);
      if (done) (this.hold(), await done);
      raft.lastApplied = install.lastIncludedIndex;
    }
    const from = raft.lastApplied;
    while (raft.lastApplied < raft.commitIndex) {
      const e = raft.log.entry(raft.lastApplied + 1)!;
      // Configuration entries take an index but are not the state machine's.
      const done = e.config ? undefined : sm.applyTransition(e.transition, e.index);
      if (done) (this.hold(), await done);
      raft.lastApplied = e.index;
      const reported = e.noop ? undefined : sm.registerTransitionState(e.transition.id, APPLIED);
      if (reported) (this.hold(), await reported);
    }
    const delta = this.config.snapshotDelta;
    if (delta > 0 && raft.lastApplied - raft.log.snapshotIndex >= delta) {
      const index = raft.lastApplied;
      const term = raft.log.term(index)!;
      const made = sm.createSnapshot!(index, term);
      const snapshot = made instanceof Promise ? (this.hold(), await made) : made;
      if (snapshot?.lastIncludedIndex !== index || snapshot.lastIncludedTerm !== term) {
        throw new TypeError(`createSnapshot(${index}, ${term}) must return a snapshot with lastIncludedIndex ${index} and lastIncludedTerm ${term}`);
      }
      raft.compact(snapshot);
    }
    return raft.lastApplied - from;
  }
}
