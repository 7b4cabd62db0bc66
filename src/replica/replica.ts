import { Mutex } from 'async-mutex';
import { MemoryStorage } from '../storage/memory.js';
import { InvalidArgumentError, NotLeaderError } from '../core/errors.js';
import { InvalidOptionsError, InvalidTransitionError, ReplicaStoppedError, StateMachineError, show } from './errors.js';
import { checkPersistentState, isTransition } from '../core/validate.js';
import type { Entry, Message } from '../core/message.js';
import { newMetrics, Raft, type Pending, type Ready } from '../core/raft.js';
import type { ReplicaMetrics, SnapshotToInstall } from '../core/raft.js';
import { raftConfig, validateOptions, type Config, type ReplicaOptions } from './options.js';
import type { Storage } from '../core/storage.js';
import type { ReplicaId, StateMachineTransition, TransitionId, TransitionState } from '../core/types.js';
import type { ReplicaEvents, ReplicaListener } from '../observe/events.js';
import { Observer } from '../observe/observer.js';
import { statusOf, type ReplicaStatus } from '../observe/status.js';

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
  private requests: { run: (raft: Raft<T, D>) => void; pending: Pending }[] = [];
  /** Serializes calls into user code (state machine, cluster) with {@link Replica.runExclusive}. */
  private readonly lock = new Mutex();
  /** One tick at a time, whoever drives them: each waits for the one before. */
  private ticking: Promise<unknown> = Promise.resolve();
  /** The algorithm, once loaded; protected so that a group's driver can read it cheaply. @internal */
  protected raft: Raft<T, D> | undefined;
  /** Set once the replica can tick no more (a storage failure, stop(), halt()): every call rejects with it. */
  private failure: { error: unknown } | undefined;
  private stopping: Promise<void> | undefined;
  private endSleep: (() => void) | undefined;
  private woken = false;
  private held = false;
  /** Turns each tick's changes into events and log lines. */
  private readonly observer: Observer;

  /** Validates the options; throws {@link InvalidOptionsError} naming the first invalid one. */
  constructor(options: ReplicaOptions<T, D>) {
    this.config = validateOptions(options);
    this.storage = options.storage ?? new MemoryStorage<T, D>();
    this.observer = new Observer(this.config.logger);
    const random = this.config.random;
    this.config.random = () => {
      const r = random();
      if (r >= 0 && r < 1) return r;
      // Drawn in the middle of a step: the algorithm's state is half-changed, so the replica stops for good.
      const error = new InvalidOptionsError(`invalid options: random() must return a number in [0, 1), not ${show(r)}`);
      this.fail(error);
      throw error;
    };
    (this.config.cluster.registerWakeup ?? this.config.cluster.setWakeup)?.call(this.config.cluster, () => this.wake());
  }

  /** Where this replica stands now: role, term, indexes, and on a leader each follower's progress. */
  get status(): ReplicaStatus {
    return statusOf(this.config.id, this.raft);
  }

  /**
   * Calls `listener` on every `name` event (see {@link ReplicaEvents}); returns the function that
   * removes it. Listeners run inside the tick, synchronously, in the order they were added: keep
   * them short. One that throws is logged and skipped; the replica goes on.
   */
  on<K extends keyof ReplicaEvents>(name: K, listener: ReplicaListener<K>): () => void {
    return this.observer.events.on(name, listener);
  }

  /** Counters worth watching (messages, elections, entries, snapshots); zero before the first tick. */
  get metrics(): Readonly<ReplicaMetrics> {
    return { ...(this.raft?.metrics ?? newMetrics()) };
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
   * Settles during a later tick, under {@link Replica.start} or a hand-driven {@link Replica.tick};
   * rejects with {@link ReplicaStoppedError} once the replica stops (or with the storage's error
   * once it fails), like every request below.
   */
  readIndex(): Promise<void> {
    return this.request((raft, p) => raft.read(p));
  }

  /**
   * Adds a voting member (single-server change, dissertation §4.1); leader only, one change at
   * a time. The new member, started with `join: true`, first catches up as a non-voter; the
   * promise resolves when the configuration that includes it is committed, at once if it is a
   * member already (so a client may retry). Rejects with {@link MembershipChangeInProgressError}
   * if another change is in progress, with {@link CatchUpTimeoutError} if the new member does not
   * catch up within the `catchUpTimeout` option, and at once with {@link InvalidArgumentError} if
   * `id` is not an integer.
   */
  addMember(id: ReplicaId): Promise<void> {
    return this.request((raft, p) => raft.changeMembership('add', id, p), id);
  }

  /**
   * Removes a voting member; leader only, one change at a time; resolves when the change is
   * committed, at once if `id` is not a member. A leader that removes itself steps down then.
   * Rejects with {@link MembershipChangeInProgressError} if another change is in progress, and
   * at once with {@link InvalidArgumentError} if `id` is not an integer.
   */
  removeMember(id: ReplicaId): Promise<void> {
    return this.request((raft, p) => raft.changeMembership('remove', id, p), id);
  }

  /**
   * Hands leadership to `to` (dissertation §3.10): the leader abandons new transitions
   * (`not-leader`), brings `to` up to date and tells it to campaign at once. Resolves when `to`
   * leads; rejects with {@link TransferTimeoutError} if it does not within one maximum election
   * timeout, with {@link TransferInProgressError} while another transfer is under way, with
   * {@link NotVoterError} if `to` is not a voting member, and at once with
   * {@link InvalidArgumentError} if `to` is not an integer.
   */
  transferLeadership(to: ReplicaId): Promise<void> {
    return this.request((raft, p) => raft.transferLeadership(to, p), to);
  }

  private request(fn: (raft: Raft<T, D>, p: Pending) => void, ...id: [ReplicaId] | []): Promise<void> {
    if (id.length > 0 && !Number.isSafeInteger(id[0])) {
      return Promise.reject(new InvalidArgumentError(`a replica id must be an integer, got ${show(id[0])}`));
    }
    if (this.failure) return Promise.reject(this.failure.error);
    return new Promise<void>((resolve, reject) => {
      const pending = { resolve, reject };
      this.requests.push({ run: (raft) => fn(raft, pending), pending });
      this.wake();
    });
  }

  /**
   * Stops the replica for good: lets a tick in progress finish, rejects every pending
   * {@link Replica.readIndex}, membership change and transfer with {@link ReplicaStoppedError},
   * closes the storage if it has a `close()` method, and resolves. A running {@link Replica.start}
   * then resolves; every later call (tick, start, requests) rejects with ReplicaStoppedError (or,
   * after a storage failure, with that failure). Idempotent. Do not await it from the state
   * machine or the cluster: it waits for the tick that called them.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.failure ??= { error: new ReplicaStoppedError('the replica was stopped') };
      this.endSleep?.();
      await this.ticking;
      this.settle(this.failure.error);
      this.observer.stopped(this.failure.error, false);
      const storage = this.storage as Storage<T, D> & { close?: unknown };
      if (typeof storage.close === 'function') await (storage.close as () => unknown).call(storage);
    })();
    return this.stopping;
  }

  /** The replica can tick no more: record why and reject every request still waiting with it. */
  private fail(error: unknown): void {
    this.failure ??= { error };
    this.settle(error);
    this.observer.stopped(this.failure.error, !(this.failure.error instanceof ReplicaStoppedError));
  }

  /** Rejects every request still queued or held by the algorithm. */
  private settle(error: unknown): void {
    const requests = this.requests;
    this.requests = [];
    for (const r of requests) r.pending.reject(error as Error);
    this.raft?.abort(error as Error);
  }

  /** Ends the idle sleep of {@link Replica.start} at once: call it when work arrives. */
  wake(): void {
    this.woken = true;
    this.endSleep?.();
  }

  /**
   * Runs the tick loop until `cluster.halt()` returns true or {@link Replica.stop} is called. A
   * busy replica ticks back to back (yielding to I/O between ticks); an idle one sleeps
   * `tickInterval` ms or until woken. Rejects with the storage's error if a save fails, or with
   * an error thrown by user code; pending requests then reject with the same error. Once it
   * returns on `halt()` the replica has stopped for good, as after stop().
   */
  async start(): Promise<void> {
    if (this.stopping) throw this.failure!.error;
    for (;;) {
      let busy: boolean | undefined;
      try {
        busy = await this.tickOnce(true);
      } catch (error) {
        // stop() ends the loop: start() resolves once stop() has.
        const stopping = this.stopping as Promise<void> | undefined; // set meanwhile, despite the check above
        if (stopping && error === this.failure?.error) return stopping.catch(() => undefined);
        // No loop is left to settle what waits.
        this.settle(error);
        throw error;
      }
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
   * every later call rejects with the same error; after {@link Replica.stop}, with
   * {@link ReplicaStoppedError}. Rejects with {@link InvalidTransitionError}, once the tick has
   * finished, if `getPendingTransitions` returned items that are not transitions (they were dropped).
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

  /**
   * Returns whether the tick found work, so `start()` knows whether to sleep; undefined once
   * `cluster.halt()` (asked if `halting`).
   */
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
      if (!polled) {
        this.fail(new ReplicaStoppedError('the replica stopped: cluster.halt() returned true'));
        return undefined;
      }
      const [messages, polledItems] = polled;
      // Nothing invalid enters the log (followers would refuse it): bad items are dropped, the rest proceed.
      const list: unknown[] = Array.isArray(polledItems) ? polledItems : [polledItems];
      const invalid = list.filter((t) => !isTransition(t));
      const pending = (invalid.length > 0 ? list.filter(isTransition) : list) as T[];
      const now = this.config.clock();
      for (const m of messages) {
        const snapshot = raft.receive(m, now);
        if (snapshot) await this.install(raft, snapshot);
      }
      raft.tick(now);
      const requests = this.requests.splice(0);
      for (const r of requests) r.run(raft);
      raft.propose(pending); // a non-leader abandons them
      const ready = raft.ready();
      if (ready.batch) {
        // §10.2.1's messages leave first: the save's encoding would otherwise run before the cluster writes.
        if (this.config.leaderSendsBeforeSave) await this.sendBeforeSave(raft, ready);
        await this.durably(() => this.storage.save(ready.batch!));
      }
      raft.advance(ready);
      // A tick that brought nothing (the last one of a busy spell, mostly) calls no user code at all.
      const quiet = messages.length + requests.length + ready.reports.length + ready.leaderChanges.length
        + ready.committed.length + ready.messages.length === 0 && !ready.members;
      const applied = quiet ? 0 : await this.exclusive(async () => {
        this.send(ready.messages);
        for (const id of ready.leaderChanges) cluster.registerLeader(id);
        if (ready.members) cluster.registerMembership?.(ready.members);
        // Indexed loops here and in apply: an iterator in an async function allocates per item.
        const r = ready.reports; // id, state, id, state
        for (let i = 0; i < r.length; i += 2) {
          const done = stateMachine.registerTransitionState(r[i] as TransitionId, r[i + 1] as TransitionState);
          // Await only a promise: a microtask per report would cost more than the report.
          if (done) (this.hold(), await done);
        }
        const count = await this.apply(raft, ready.committed);
        raft.settleReads();
        return count;
      });
      this.observer.ticked(raft, now);
      if (invalid.length > 0) throw new InvalidTransitionError(invalid);
      return messages.length + pending.length + ready.messages.length + applied > 0 || ready.batch !== undefined;
    });
    this.ticking = run.catch(() => undefined);
    return run;
  }

  /**
   * The opt-in of dissertation §10.2.1 (`leaderSendsBeforeSave`): a leader whose batch holds only
   * new entries sends its messages while it saves them; it counts itself toward commitment only
   * once they are durable (`advance`), and reports `queued` only then. A batch with a term, a
   * vote, a truncation or a snapshot is never sent ahead: messages may depend on those.
   */
  private async sendBeforeSave(raft: Raft<T, D>, ready: Ready<T, D>): Promise<void> {
    const b = ready.batch!;
    if (!raft.isLeader() || b.hardState || b.truncateFrom !== undefined || b.snapshot) return;
    const early = ready.messages.splice(0);
    raft.metrics.messagesOut += early.length;
    await this.exclusive(async () => this.send(early));
  }

  /** Hands messages to the cluster, under the lock. */
  private send(messages: [ReplicaId, Message<T, D>][]): void {
    for (const [to, m] of messages) this.config.cluster.sendMessage(to, m);
  }

  /** Runs a storage step; its failure stops the replica for good, since memory is now ahead of disk. */
  private async durably<R>(fn: () => Promise<R>): Promise<R> {
    try {
      return await fn();
    } catch (error) {
      this.observer.storageFailed(error);
      this.fail(error);
      throw error;
    }
  }

  /**
   * Has the state machine load a newer snapshot from the leader before the algorithm takes it:
   * it is saved and acknowledged only once loaded, so a snapshot the state machine refuses
   * (its setSnapshot throws) is dropped and counted, and never breaks a restart.
   */
  private async install(raft: Raft<T, D>, m: SnapshotToInstall<D>): Promise<void> {
    if (!this.config.stateMachine.setSnapshot) this.setSnapshot(m.snapshot); // throws: the hook is missing
    try {
      await this.exclusive(async () => {
        const done = this.setSnapshot(m.snapshot);
        if (done) (this.hold(), await done);
      });
    } catch {
      return raft.refused();
    }
    raft.installed(m);
  }

  private async load(): Promise<Raft<T, D>> {
    const state = await this.storage.load();
    checkPersistentState(state);
    const sm = this.config.stateMachine;
    const stored = state.snapshot;
    const seed = stored ? undefined : await this.lock.runExclusive(async () => sm.getSnapshot?.());
    const raft = new Raft<T, D>(raftConfig(this.config), state);
    if (seed) raft.seed(seed);
    await this.lock.runExclusive(async () => {
      if (stored) await this.setSnapshot(stored);
      this.config.cluster.registerMembership?.([...raft.membership.voters]);
    });
    raft.start(this.config.clock());
    this.raft = raft;
    this.observer.started(raft);
    return raft;
  }

  private setSnapshot(s: NonNullable<Raft<T, D>['snapshot']>): void | Promise<void> {
    const sm = this.config.stateMachine;
    if (!sm.setSnapshot) {
      throw new TypeError('a snapshot must be loaded, but stateMachine.setSnapshot is not implemented');
    }
    return sm.setSnapshot(s);
  }

  /** Applies the committed entries in index order, then takes the snapshot the algorithm asks for. Under the lock. */
  private async apply(raft: Raft<T, D>, committed: Entry<T>[]): Promise<number> {
    const sm = this.config.stateMachine;
    for (let i = 0; i < committed.length; i++) {
      const e = committed[i]!;
      // Configuration entries take an index but are not the state machine's.
      try {
        const done = e.kind === 'config' ? undefined : sm.applyTransition(e.transition, e.index);
        if (done) (this.hold(), await done);
      } catch (cause) {
        // The state machine may be half-changed: applying the entry again could apply it twice.
        const error = new StateMachineError(e.index, cause);
        this.fail(error);
        throw error;
      }
      raft.applied(e.index);
      const reported = e.kind === 'transition' ? sm.registerTransitionState(e.transition.id, APPLIED) : undefined;
      if (reported) (this.hold(), await reported);
    }
    const due = raft.snapshotDue();
    if (due) {
      const { index, term } = due;
      const made = sm.createSnapshot!(index, term);
      const snapshot = made instanceof Promise ? (this.hold(), await made) : made;
      if (snapshot?.lastIncludedIndex !== index || snapshot.lastIncludedTerm !== term) {
        const expected = `lastIncludedIndex ${index} and lastIncludedTerm ${term}`;
        throw new TypeError(`createSnapshot(${index}, ${term}) must return a snapshot with ${expected}`);
      }
      raft.compact(snapshot);
    }
    return committed.length;
  }
}
