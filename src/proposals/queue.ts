import { NotLeaderError } from '../core/errors.js';
import type { StateMachine } from '../replica/state-machine.js';
import type { ReplicaId, Snapshot, StateMachineTransition, TransitionId, TransitionState } from '../core/types.js';
import { ConflictError, ProposalTimeoutError } from './errors.js';

/**
 * Your state machine, as {@link ProposalQueue} wraps it: `applyTransition` returns the value a
 * proposal resolves with. It polls nothing itself (the queue does); the snapshot hooks and
 * `registerTransitionState`, when present, are called as the replica would call them.
 */
export interface ProposalStateMachine<T extends StateMachineTransition, D = unknown, R = unknown> {
  /** Applies the transition; what it returns (or resolves with) goes to the proposal of this entry. */
  applyTransition(transition: T, index: number): R | Promise<R>;
  /** Optional: sees every state the replica reports, before the queue acts on it. */
  registerTransitionState?(transitionId: TransitionId, state: TransitionState): void | Promise<void>;
  /** As {@link StateMachine.getSnapshot}. */
  getSnapshot?(): Snapshot<D> | undefined | Promise<Snapshot<D> | undefined>;
  /** As {@link StateMachine.createSnapshot}. */
  createSnapshot?(lastIncludedIndex: number, lastIncludedTerm: number): Snapshot<D> | Promise<Snapshot<D>>;
  /** As {@link StateMachine.setSnapshot}. */
  setSnapshot?(snapshot: Snapshot<D>): void | Promise<void>;
}

/** The part of a replica's status the queue reads. */
export interface ProposalHostStatus {
  /** The replica's own id. */
  readonly id: ReplicaId;
  /** The leader it knows of, if any. */
  readonly leaderId: ReplicaId | undefined;
}

/** What the queue needs of the replica that runs it: a {@link Replica} has all of it. */
export interface ProposalHost {
  /** Ends the replica's idle sleep, so a proposal is polled at once. */
  wake(): void;
  /** Where the replica stands: `leaderId` goes into a {@link NotLeaderError}. */
  readonly status: ProposalHostStatus;
  /**
   * Optional: tells the queue when the replica stops for good, so that no proposal waits on a
   * replica that can no longer settle it. A {@link Replica} has it.
   */
  on?(name: 'stopped', listener: (event: { error: unknown }) => void): () => void;
}

/** Options of {@link ProposalQueue}. */
export interface ProposalQueueOptions {
  /**
   * The clock deadlines are measured on, in ms. When given (a virtual clock, e.g.
   * `LocalNetwork.clock`), deadlines are checked on every tick, as the replica polls; when not,
   * a timer fires at each deadline.
   */
  clock?: () => number;
}

/** Options of one {@link ProposalQueue.propose} call. */
export interface ProposeOptions {
  /** Reject with {@link ProposalTimeoutError} if not applied here within this many ms. Default: no limit. */
  timeoutMs?: number;
  /** Abort waiting: the promise rejects with `signal.reason`. */
  signal?: AbortSignal;
}

/** One call of propose(): its own copy of the transition is its entry's identity. */
interface Attempt<T, R> {
  readonly entry: T;
  readonly id: TransitionId;
  readonly resolve: (value: R) => void;
  readonly reject: (error: unknown) => void;
  settled: boolean;
  /** Set by applyTransition of this very entry; handed over when `applied` is reported. */
  result?: { value: R };
  timeoutMs?: number;
  /** On the queue's `clock`, when it has one. */
  deadline?: number;
  /** Without a `clock`: the timer that rejects it at `timeoutMs`. */
  timer?: ReturnType<typeof setTimeout>;
  /** Stops listening to its abort signal. */
  cleanup?: () => void;
}

/**
 * The recommended way to propose: `await queue.propose(t)` resolves with the value your
 * `applyTransition` returned for `t`'s own log entry, once it is applied on this replica.
 * It rejects with {@link NotLeaderError} (this replica does not lead; retry on `leaderId`),
 * {@link ConflictError} (a new leader removed the entry), {@link ProposalTimeoutError} (`timeoutMs`
 * passed), `signal.reason` (aborted), or whatever {@link ProposalQueue.rejectAll} is given.
 *
 * Build it around your state machine, pass it to the {@link Replica} as its `stateMachine`,
 * then {@link ProposalQueue.attach} the replica. It is built on the polling contract alone: it
 * hands proposals out from `getPendingTransitions` and follows their reported states.
 *
 * The rules that make retries safe:
 * - Each call proposes its own copy of `t` (transitions are plain data), and only the
 *   application of that copy's entry resolves it. An entry with the same id from an earlier,
 *   abandoned attempt, or proposed on another replica, never resolves it: a superseded attempt
 *   is never reported as done.
 * - A fulfilment is exact. A rejection means only "not known to be applied": after a timeout or
 *   an abort the entry may still commit. So retry with the same id, and have `applyTransition`
 *   skip (and answer like the first time) an id it has already applied.
 * - Rejected on `conflict-with-leader` is the latest live attempt of that id queued here (a
 *   truncation removes the log's tail, so it takes the latest one first).
 * - Ids must differ from the `noopTransition`'s id.
 *
 * Memory holds only live proposals: each settles once, and is forgotten then.
 *
 * @example
 * ```ts
 * const proposals = new ProposalQueue(new Counter()); // applyTransition returns the new total
 * const replica = new Replica({ id: 1, peerIds: [2, 3], cluster, stateMachine: proposals, ...timeouts });
 * proposals.attach(replica);
 * void replica.start();
 * const total = await proposals.propose({ id: 'add-1', amount: 5 }, { timeoutMs: 2000 });
 * ```
 */
export class ProposalQueue<T extends StateMachineTransition, D = unknown, R = unknown> implements StateMachine<T, D> {
  private host: ProposalHost | undefined;
  private pending: Attempt<T, R>[] = [];
  /** Polled, awaiting their first report (`queued` or `not-leader`), which comes in poll order. */
  private readonly polled = new Map<TransitionId, Attempt<T, R>[]>();
  /** Queued and live, oldest first, awaiting `applied` or `conflict-with-leader`. */
  private readonly queued = new Map<TransitionId, Attempt<T, R>[]>();
  /** Each live attempt by its entry's identity: how an application finds its proposal. */
  private readonly byEntry = new Map<T, Attempt<T, R>>();
  private readonly clock: (() => number) | undefined;
  /** Set once the attached replica has stopped for good: every proposal rejects with its error. */
  private stopped: { error: unknown } | undefined;

  /**
   * @param stateMachine - Your state machine; its `applyTransition` results resolve the proposals.
   * @param options - See {@link ProposalQueueOptions}.
   */
  constructor(
    readonly stateMachine: ProposalStateMachine<T, D, R>,
    options: ProposalQueueOptions = {},
  ) {
    this.clock = options.clock;
    if (stateMachine.getSnapshot) this.getSnapshot = () => stateMachine.getSnapshot!();
    if (stateMachine.createSnapshot) this.createSnapshot = (i, term) => stateMachine.createSnapshot!(i, term);
    if (stateMachine.setSnapshot) this.setSnapshot = (s) => stateMachine.setSnapshot!(s);
  }

  /**
   * The replica this queue is the state machine of; call once, before {@link ProposalQueue.propose}.
   * Once that replica stops for good (stopped, halted, failed), every proposal still waiting, and
   * every later one, rejects with the replica's error.
   */
  attach(host: ProposalHost): this {
    this.host = host;
    host.on?.('stopped', ({ error }) => {
      this.stopped = { error };
      this.rejectAll(error);
    });
    return this;
  }

  /** How many proposals are waiting for their outcome. */
  get size(): number {
    return this.byEntry.size;
  }

  /**
   * Proposes `transition` and resolves with what `applyTransition` returned for its entry once it
   * is applied on this replica; see the class comment for the rejections and the retry rules.
   * @throws TypeError (rejects) if no replica is attached, or `transition` has no valid id;
   * RangeError if `timeoutMs` is negative or not finite; `signal.reason` if already aborted.
   */
  propose(transition: T, options: ProposeOptions = {}): Promise<R> {
    const host = this.host;
    if (!host) return Promise.reject(new TypeError('ProposalQueue.propose: attach(replica) first'));
    const { timeoutMs, signal } = options;
    if (timeoutMs !== undefined && !(Number.isFinite(timeoutMs) && timeoutMs >= 0)) {
      return Promise.reject(new RangeError(`timeoutMs must be a finite number >= 0, got ${String(timeoutMs)}`));
    }
    const id: unknown = (transition as { id?: unknown } | null)?.id;
    // The replica drops a polled item that is not a transition without a report: refuse it here.
    if (!(typeof id === 'string' || (typeof id === 'number' && Number.isFinite(id)))) {
      return Promise.reject(
        new TypeError(`propose: a transition is an object whose id is a string or a finite number, got ${String(id)}`),
      );
    }
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.stopped) return Promise.reject(this.stopped.error);
    let attempt!: Attempt<T, R>;
    const done = new Promise<R>((resolve, reject) => {
      attempt = { entry: { ...transition }, id: transition.id, resolve, reject, settled: false };
    });
    // Registered at once, without the replica's lock: the queue's own state is only ever touched
    // by synchronous code, and a proposal added while the replica awaits your state machine waits
    // in `pending` for the next poll, like any other. A lock per call costs more than the rest.
    this.byEntry.set(attempt.entry, attempt);
    this.pending.push(attempt);
    attempt.timeoutMs = timeoutMs;
    if (timeoutMs !== undefined) {
      if (this.clock) attempt.deadline = this.clock() + timeoutMs;
      else {
        attempt.timer = setTimeout(
          () => this.settle(attempt, { error: new ProposalTimeoutError(attempt.id, timeoutMs) }),
          timeoutMs,
        );
      }
    }
    if (signal) {
      const onAbort = (): void => this.settle(attempt, { error: signal.reason });
      signal.addEventListener('abort', onAbort, { once: true });
      attempt.cleanup = () => signal.removeEventListener('abort', onAbort);
    }
    host.wake();
    return done;
  }

  /** Rejects every proposal still waiting with `error`: call it when the replica stops. */
  rejectAll(error: unknown): void {
    for (const attempt of [...this.byEntry.values()]) this.settle(attempt, { error });
  }

  /** Hands the proposals made since the last poll to the replica. Called by the replica. */
  getPendingTransitions(): T[] {
    this.expire();
    const out: T[] = [];
    for (const a of this.pending) {
      if (a.settled) continue;
      out.push(a.entry);
      push(this.polled, a.id, a);
    }
    this.pending = [];
    return out;
  }

  /** Applies through your state machine, keeping the result for this entry's proposal. Called by the replica. */
  applyTransition(transition: T, index: number): void | Promise<void> {
    const value = this.stateMachine.applyTransition(transition, index);
    // Synchronous when your state machine is: the replica then awaits nothing.
    if (value instanceof Promise) return value.then((v: R) => this.record(transition, v));
    this.record(transition, value);
  }

  /** Follows each proposal's reported state (after your state machine sees it). Called by the replica. */
  registerTransitionState(transitionId: TransitionId, state: TransitionState): void | Promise<void> {
    const done = this.stateMachine.registerTransitionState?.(transitionId, state);
    if (done instanceof Promise) return done.then(() => this.follow(transitionId, state));
    this.follow(transitionId, state);
  }

  private record(entry: T, value: R): void {
    const attempt = this.byEntry.get(entry);
    if (attempt) attempt.result = { value };
  }

  private follow(transitionId: TransitionId, state: TransitionState): void {
    if (state.status === 'queued') {
      const a = shift(this.polled, transitionId);
      if (a && !a.settled) push(this.queued, transitionId, a);
    } else if (state.status === 'applied') {
      const list = this.queued.get(transitionId) ?? [];
      const a = list.find((x) => x.result !== undefined);
      if (a) this.settle(a, { value: a.result!.value });
    } else if (state.status === 'abandoned' && state.reason === 'not-leader') {
      const a = shift(this.polled, transitionId);
      // A leader handing over leadership abandons too: it is not the leader to retry on.
      const leader = this.host?.status.leaderId;
      if (a) this.settle(a, { error: new NotLeaderError(leader === this.host?.status.id ? undefined : leader) });
    } else if (state.status === 'abandoned') {
      const list = this.queued.get(transitionId);
      const a = list?.[list.length - 1];
      if (a) this.settle(a, { error: new ConflictError(transitionId) });
    }
  }

  /** Optional snapshot hook, present when your state machine has it. */
  getSnapshot?: StateMachine<T, D>['getSnapshot'];
  /** Optional snapshot hook, present when your state machine has it. */
  createSnapshot?: StateMachine<T, D>['createSnapshot'];
  /** Optional snapshot hook, present when your state machine has it. */
  setSnapshot?: StateMachine<T, D>['setSnapshot'];

  /** Rejects the proposals whose deadline on the given clock has passed. */
  private expire(): void {
    if (!this.clock) return;
    const now = this.clock();
    for (const a of [...this.byEntry.values()]) {
      if (a.deadline !== undefined && now >= a.deadline) {
        this.settle(a, { error: new ProposalTimeoutError(a.id, a.timeoutMs ?? 0) });
      }
    }
  }

  /** Settles an attempt once: resolves with the value, or rejects with the error. */
  private settle(a: Attempt<T, R>, outcome: { value: R } | { error: unknown }): void {
    if (a.settled) return;
    a.settled = true;
    if (a.timer !== undefined) clearTimeout(a.timer);
    a.cleanup?.();
    this.byEntry.delete(a.entry);
    // A polled attempt stays in `polled` until its first report, which must line up with it.
    const list = this.queued.get(a.id);
    if (list) {
      const at = list.indexOf(a);
      if (at >= 0) list.splice(at, 1);
      if (list.length === 0) this.queued.delete(a.id);
    }
    if ('value' in outcome) a.resolve(outcome.value);
    else a.reject(outcome.error);
  }
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

function shift<K, V>(map: Map<K, V[]>, key: K): V | undefined {
  const list = map.get(key);
  const first = list?.shift();
  if (list?.length === 0) map.delete(key);
  return first;
}
