/**
 * tickraft: Raft replicated state machines for TypeScript on Node.js.
 *
 * Implement {@link StateMachine} and {@link Cluster} (or use a shipped transport), then run a
 * {@link Replica} per member. The root loads no network module: the TCP transport is
 * `tickraft/tcp`, the file storage also `tickraft/file`, the simulated network also
 * `tickraft/testing`.
 * @packageDocumentation
 * @mergeModuleWith <project>
 */
export type {
  ReplicaId,
  TransitionId,
  StateMachineTransition,
  AbandonedReason,
  TransitionState,
  LogEntry,
  Snapshot,
} from './core/types.js';
export { MAX_TERM_OR_INDEX } from './core/types.js';
export type { StateMachine } from './replica/state-machine.js';
export type { Cluster } from './core/cluster.js';
export type { Storage, StorageBatch, PersistentState } from './core/storage.js';
export type {
  Message,
  MessageBase,
  Entry,
  CoreSnapshot,
  VoteRequest,
  VoteResponse,
  AppendRequest,
  AppendResponse,
  SnapshotRequest,
  SnapshotMeta,
  SnapshotResponse,
  TimeoutNow,
} from './core/message.js';
export { isValidMessage } from './core/validate.js';
export type { ReplicaOptions } from './replica/options.js';
export type { ReplicaMetrics } from './core/raft.js';
export { Replica } from './replica/replica.js';
export type {
  ReplicaStatus,
  FollowerStatus,
  SnapshotProgress,
  MembershipChangeStatus,
  TransferStatus,
} from './observe/status.js';
export type {
  ReplicaEvents,
  ReplicaListener,
  Role,
  LeaderEvent,
  RoleEvent,
  TermEvent,
  CommitEvent,
  SnapshotEvent,
  MembershipEvent,
  FailureEvent,
} from './observe/events.js';
export type { Logger } from './observe/logger.js';
export {
  NotLeaderError,
  CorruptStateError,
  InvalidArgumentError,
  MembershipChangeInProgressError,
  TransferInProgressError,
  CatchUpTimeoutError,
  TransferTimeoutError,
  NotVoterError,
} from './core/errors.js';
export {
  InvalidOptionsError,
  ReplicaStoppedError,
  InvalidTransitionError,
  StateMachineError,
} from './replica/errors.js';
// The recommended way to propose: await a transition's applied value (docs/guide.md#proposing).
export {
  ProposalQueue,
  type ProposalStateMachine,
  type ProposalHost,
  type ProposalHostStatus,
  type ProposalQueueOptions,
  type ProposeOptions,
} from './proposals/queue.js';
export { ConflictError, ProposalTimeoutError } from './proposals/errors.js';
export { MemoryStorage } from './storage/memory.js';
export type { Codec } from './core/codec.js';
// Kept at the root for compatibility; each also has a subpath of its own (tickraft/testing,
// tickraft/file). Neither loads a network module.
export {
  LocalNetwork,
  type LocalCluster,
  type LocalNetworkOptions,
  type FaultOptions,
  type NetworkStats,
} from './sim/local-network.js';
export { seededRandom, deriveSeed } from './sim/random.js';
export { FileStorage, type FileStorageOptions } from './storage/file-storage.js';
export type { FileStorageRecovery } from './storage/file-recovery.js';
export { CorruptStorageError, StorageFormatError, StorageLockedError } from './storage/file-errors.js';
export { jsonStorageCodec, type StorageCodec } from './storage/codec.js';
// Type-only: the codecs themselves live in tickraft/tcp, whose msgpackr the root does not load.
export type { MessageCodec } from './transport/codec.js';
