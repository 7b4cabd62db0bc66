import type { ReplicaId } from './types.js';

/** Rejects a leader-only request made to a replica that does not lead. */
export class NotLeaderError extends Error {
  /** Always `'NotLeaderError'`. */
  override readonly name = 'NotLeaderError';
  /** The leader this replica knows of, if any: retry there. */
  readonly leaderId: ReplicaId | undefined;
  constructor(leaderId: ReplicaId | undefined) {
    super(leaderId === undefined ? 'not the leader; no leader is known' : `not the leader; replica ${leaderId} leads`);
    this.leaderId = leaderId;
  }
}

/** Thrown by the first tick when storage returns state that cannot be a Raft log (gaps, terms going back). */
export class CorruptStateError extends Error {
  /** Always `'CorruptStateError'`. */
  override readonly name = 'CorruptStateError';
}

/**
 * Rejects a replica method called with an argument it can never accept: a member id that is
 * not an integer, or a transfer to a replica that is not a voting member. Retrying cannot help.
 */
export class InvalidArgumentError extends TypeError {
  /** `'InvalidArgumentError'`, or the name of a more precise kind ({@link NotVoterError}). */
  override readonly name: string = 'InvalidArgumentError';
}

/**
 * Rejects {@link Replica.addMember} or {@link Replica.removeMember} while another membership
 * change is not yet committed: one change at a time keeps any two majorities overlapping. Retry
 * once it is.
 */
export class MembershipChangeInProgressError extends Error {
  /** Always `'MembershipChangeInProgressError'`. */
  override readonly name = 'MembershipChangeInProgressError';
}

/** Rejects {@link Replica.transferLeadership} while another transfer is under way. */
export class TransferInProgressError extends Error {
  /** Always `'TransferInProgressError'`. */
  override readonly name = 'TransferInProgressError';
}

/**
 * Rejects {@link Replica.addMember} when the new member did not catch up with the leader's log
 * within the `catchUpTimeout` option: it is not added. Is it running, with `join: true`?
 */
export class CatchUpTimeoutError extends Error {
  /** Always `'CatchUpTimeoutError'`. */
  override readonly name = 'CatchUpTimeoutError';
}

/** Rejects {@link Replica.transferLeadership} when the target did not take over within one maximum election timeout. */
export class TransferTimeoutError extends Error {
  /** Always `'TransferTimeoutError'`. */
  override readonly name = 'TransferTimeoutError';
}

/**
 * Rejects {@link Replica.transferLeadership} to a replica that is not a voting member: only a
 * voter can lead. It is an {@link InvalidArgumentError}, as this rejection always was.
 */
export class NotVoterError extends InvalidArgumentError {
  /** Always `'NotVoterError'`. */
  override readonly name = 'NotVoterError';
}
