// The driver's own errors: what it refuses of the user's options and code, and requests to a
// stopped replica. The algorithm's rejections are in src/core/errors.ts.

/** Thrown by the {@link Replica} constructor when an option is invalid; the message names the option. */
export class InvalidOptionsError extends TypeError {
  /** Always `'InvalidOptionsError'`. */
  override readonly name = 'InvalidOptionsError';
}

/**
 * Rejects every request to a replica that has stopped for good: after {@link Replica.stop}, or
 * once {@link Replica.start} returned because `cluster.halt()` said so. Nothing was done.
 */
export class ReplicaStoppedError extends Error {
  /** Always `'ReplicaStoppedError'`. */
  override readonly name = 'ReplicaStoppedError';
}

/**
 * Rejects a tick whose `getPendingTransitions()` returned items that are not transitions (an
 * object whose `id` is a string or a finite number). Those items were dropped before reaching
 * the log; the valid transitions of the same poll were handled as usual, and the tick finished.
 */
export class InvalidTransitionError extends TypeError {
  /** Always `'InvalidTransitionError'`. */
  override readonly name = 'InvalidTransitionError';
  /** The items dropped, as the state machine returned them. */
  readonly transitions: readonly unknown[];
  constructor(message: string, transitions: unknown[]) {
    super(message);
    this.transitions = transitions;
  }
}
