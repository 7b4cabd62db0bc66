import type { Snapshot, StateMachineTransition, TransitionId, TransitionState } from '../core/types.js';

/**
 * The application's replicated state, implemented by the user.
 *
 * The replica calls these methods one at a time, never concurrently with each other, with any
 * {@link Cluster} method, or with code run through {@link Replica.runExclusive}. A method may
 * return a promise; the replica awaits it before calling anything else.
 *
 * When a method throws (or its promise rejects): `applyTransition` stops the replica for good
 * with a {@link StateMachineError}, since applying the entry again could apply it twice; any other
 * method makes that tick reject with the error and the replica goes on at the next tick, nothing
 * applied twice (a report not made is not made again; a snapshot not taken is asked for again).
 * `setSnapshot` refusing a snapshot from the leader drops it (the leader sends it again); refusing
 * the stored one at start, like `getSnapshot` throwing there, stops the replica with that error.
 *
 * @example
 * ```ts
 * class Counter implements StateMachine<{ id: number; add: number }> {
 *   value = 0;
 *   pending: { id: number; add: number }[] = [];
 *   getPendingTransitions() { const p = this.pending; this.pending = []; return p; }
 *   applyTransition(t: { id: number; add: number }) { this.value += t.add; }
 *   registerTransitionState() {}
 * }
 * ```
 */
export interface StateMachine<T extends StateMachineTransition, D = unknown> {
  /**
   * Tells where a submitted transition stands. `queued` comes only after the entry is durable;
   * no state is reported for the `noopTransition`.
   */
  registerTransitionState(transitionId: TransitionId, state: TransitionState): void | Promise<void>;
  /**
   * Applies a committed transition. Called exactly once per log index, in index order, without
   * gaps, with the same transition at the same index on every replica. A snapshot installed
   * through {@link StateMachine.setSnapshot} replaces a prefix; application resumes after it.
   * Throwing stops the replica for good with a {@link StateMachineError} (see above).
   */
  applyTransition(transition: T, index: number): void | Promise<void>;
  /**
   * Hands over (drains) the transitions submitted since the last call. Called at most once per
   * tick. The leader appends them to its log; any other replica reports each `abandoned` /
   * `not-leader`.
   */
  getPendingTransitions(): T[] | Promise<T[]>;
  /**
   * The state machine's own snapshot, if it keeps one. Asked once at start when storage holds no
   * snapshot: a snapshot returned seeds the replica, and application resumes after it.
   */
  getSnapshot?(): Snapshot<D> | undefined | Promise<Snapshot<D> | undefined>;
  /**
   * Captures the current state. Always called with `lastIncludedIndex` equal to the last applied
   * index, so the state machine snapshots exactly what it holds. Required when `snapshotDelta > 0`.
   */
  createSnapshot?(lastIncludedIndex: number, lastIncludedTerm: number): Snapshot<D> | Promise<Snapshot<D>>;
  /**
   * Replaces the whole state with a snapshot newer than anything applied: one installed from the
   * leader, or the one storage holds at start. Required when snapshots are in use.
   */
  setSnapshot?(snapshot: Snapshot<D>): void | Promise<void>;
}
