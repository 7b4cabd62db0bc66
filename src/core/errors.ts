import type { ReplicaId } from './types.js';

/** Thrown by the {@link Replica} constructor when an option is invalid; the message names the option. */
export class InvalidOptionsError extends TypeError {
  /** Always `'InvalidOptionsError'`. */
  override readonly name = 'InvalidOptionsError';
}

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
