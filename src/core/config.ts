import type { ReplicaId, StateMachineTransition } from './types.js';

/**
 * The settings the algorithm uses, checked and with defaults filled in by the driver (see
 * `ReplicaOptions` for what each means). The cluster, the state machine, the storage and the
 * clock stay with the driver: the algorithm never calls them.
 */
export interface RaftConfig<T extends StateMachineTransition> {
  readonly id: ReplicaId;
  readonly peerIds: readonly ReplicaId[];
  readonly noopTransition: T;
  readonly heartbeatTimeout: number;
  readonly electionTimeoutRange: readonly [number, number];
  /** Milliseconds a new member has to catch up before a membership change that adds it fails. */
  readonly catchUpTimeout: number;
  readonly snapshotDelta: number;
  readonly maxEntriesPerMessage: number;
  readonly maxInflightMessages: number;
  readonly maxBytesPerMessage: number;
  readonly maxInflightBytes: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  readonly join: boolean;
  /** The only randomness, in [0, 1): it draws election timeouts. */
  readonly random: () => number;
}
