/** Identifies one replica of the cluster. Ids are integers, unique within a cluster. */
export type ReplicaId = number;

/**
 * The highest term or log index a replica accepts (2^53 − 2): one below the largest integer a
 * number holds exactly, so that the next term or index is still exact. A message carrying more
 * is dropped, a storage holding more is corrupt, and a replica at this term no longer campaigns.
 * At one election per millisecond a cluster would reach it in 285,000 years.
 */
export const MAX_TERM_OR_INDEX = Number.MAX_SAFE_INTEGER - 1;

/**
 * Identifies a transition to the code that submitted it. Ids need not be unique: a client
 * that retries resubmits the same id, and each submission becomes its own log entry.
 */
export type TransitionId = string | number;

/** A user-defined command for the replicated state machine. Plain data that survives a JSON round-trip. */
export interface StateMachineTransition {
  /** Reported back through {@link StateMachine.registerTransitionState}. */
  readonly id: TransitionId;
}

/** Why a transition will never be applied. */
export type AbandonedReason = 'not-leader' | 'conflict-with-leader';

/**
 * Where a transition stands. A transition moves `queued` → `committed` → `applied`, or ends
 * `abandoned`:
 * - `queued`: accepted by the leader and durable in its log;
 * - `committed`: on a majority, so it survives any leader change (reported by the leader that commits it);
 * - `applied`: applied to this replica's state machine (reported by every replica);
 * - `abandoned`: `not-leader` when submitted to a replica that does not lead, or
 *   `conflict-with-leader` when a new leader's log replaced the uncommitted entry.
 */
export type TransitionState =
  | {
      /** Accepted by the leader, durable in its log. */
      readonly status: 'queued';
    }
  | {
      /** On a majority: survives any leader change. */
      readonly status: 'committed';
    }
  | {
      /** Applied to this replica's state machine. */
      readonly status: 'applied';
    }
  | {
      /** Will never be applied. */
      readonly status: 'abandoned';
      /** Why. */
      readonly reason: AbandonedReason;
    };

/** One entry of the replicated log. */
export interface LogEntry<T> {
  /** Position in the log, from 1. */
  readonly index: number;
  /** Term of the leader that created the entry. */
  readonly term: number;
  /** The user's transition (the `noopTransition` for a leader's first entry of its term). */
  readonly transition: T;
}

/** A state machine's state as of a log index: it replaces every entry up to and including that index. */
export interface Snapshot<D> {
  /** Index of the last entry whose effect the snapshot holds. */
  readonly lastIncludedIndex: number;
  /** Term of that entry. */
  readonly lastIncludedTerm: number;
  /** The state machine's own data: plain data that survives a JSON round-trip. */
  readonly data: D;
}
