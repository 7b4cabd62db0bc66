// The driver's own errors: what it refuses of the user's options and code, and requests to a
// stopped replica. The algorithm's rejections are in src/core/errors.ts.
import { inspect } from 'node:util';

/** One line naming a bad value for an error message, whatever it is (cycles, BigInt, symbols). */
export const show = (v: unknown): string =>
  inspect(v, { depth: 2, breakLength: Infinity, maxArrayLength: 10, maxStringLength: 80 });

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
  constructor(transitions: unknown[]) {
    const what = `getPendingTransitions() returned ${transitions.length} item(s) that are not transitions`;
    super(`${what} (an object whose id is a string or a finite number), dropped: ${transitions.map(show).join(', ')}`);
    this.transitions = transitions;
  }
}

/**
 * The state machine's `applyTransition` threw (or its promise rejected) at `index`: the replica
 * stops for good, since the state machine may be half-changed and applying the entry again could
 * apply it twice. `cause` is what it threw. Every pending request, and the running
 * {@link Replica.start}, reject with this error. Restart the process: the replica re-applies from
 * its snapshot or from index 1, as after a crash.
 */
export class StateMachineError extends Error {
  /** Always `'StateMachineError'`. */
  override readonly name = 'StateMachineError';
  /** The log index whose transition threw. */
  readonly index: number;
  constructor(index: number, cause: unknown) {
    const what = cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause);
    super(`applyTransition threw at index ${index}; the replica stopped: ${what}`, { cause });
    this.index = index;
  }
}
