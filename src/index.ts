/**
 * tickraft: Raft replicated state machines for TypeScript on Node.js.
 *
 * Implement {@link StateMachine} and {@link Cluster} (or use a shipped transport), then run a
 * {@link Replica} per member.
 * @packageDocumentation
 */
export type { ReplicaId, TransitionId, StateMachineTransition, AbandonedReason, TransitionState, LogEntry, Snapshot } from './core/types.js';
export type { StateMachine } from './core/state-machine.js';
export type { Cluster } from './core/cluster.js';
export type { Storage, StorageBatch, PersistentState } from './core/storage.js';
export type {
  Message, MessageBase, Entry, CoreSnapshot, VoteRequest, VoteResponse, AppendRequest, AppendResponse,
  SnapshotRequest, SnapshotMeta, SnapshotResponse, TimeoutNow,
} from './core/message.js';
export { isValidMessage } from './core/validate.js';
export type { ReplicaOptions } from './core/options.js';
export type { ReplicaMetrics } from './core/raft.js';
export { Replica, type ReplicaStatus } from './replica/replica.js';
export { InvalidOptionsError, NotLeaderError, CorruptStateError } from './core/errors.js';
export { MemoryStorage } from './storage/memory.js';
export { LocalNetwork, type LocalCluster, type LocalNetworkOptions, type FaultOptions, type NetworkStats } from './transport/local.js';
export { seededRandom, deriveSeed } from './sim/random.js';
export { TcpCluster, type TcpClusterOptions, type TcpStats, type TcpEvent, type PeerAddress, type TcpTlsOptions, type DropReason } from './transport/tcp.js';
export { jsonCodec, msgpackCodec, type MessageCodec } from './transport/codec.js';
export { FileStorage, CorruptStorageError, StorageLockedError, type FileStorageOptions, type FileStorageRecovery } from './storage/file.js';
export { jsonStorageCodec, type StorageCodec } from './storage/codec.js';
