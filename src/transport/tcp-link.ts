// The records a TcpCluster keeps and its parts share: one per peer, one per connection, and the
// state common to the address book (tcp-peers.ts), the connections (tcp-connection.ts) and the
// outbound batching (tcp-outbound.ts).
import type net from 'node:net';
import type { ReplicaId } from '../core/types.js';
import type { PendingEntry } from './admission.js';
import type { FrameOpener, FrameSealer } from './frame-auth.js';
import type { FrameDecoder } from './frame.js';
import type { BoundedQueue } from './queue.js';
import type { DropReason, TcpEvent, TcpStats } from './tcp-events.js';
import type { PeerAddress, ResolvedTcpOptions } from './tcp-options.js';

/** A replica of the address book. */
export interface Peer {
  readonly id: ReplicaId;
  address: PeerAddress;
  readonly queue: BoundedQueue<Uint8Array>;
  /** The authenticated connection, if any. */
  conn: Connection | undefined;
  /** An outbound connection being set up. */
  dialing: Connection | undefined;
  timer: NodeJS.Timeout | undefined;
  attempt: number;
  everConnected: boolean;
  /** It was in a registered membership and the latest one leaves it out. */
  leaving: boolean;
  /** Leaving and quiet for `retireAfter` ms: no connection kept, not dialed, until traffic revives it. */
  retired: boolean;
  /** When something was last sent to or received from it (tracked only while leaving). */
  lastActive: number;
}

/** A TCP (or TLS) connection, from its socket to its close. */
export interface Connection {
  readonly socket: net.Socket;
  readonly outbound: boolean;
  readonly remote: string;
  readonly decoder: FrameDecoder;
  readonly nonce: Buffer;
  /** Outbound: the peer dialed. Inbound: set once its hello names a known peer. */
  peer: Peer | undefined;
  /** 'verdict': proofs checked; the dialer waits for the acceptor's welcome, the acceptor checks for a live twin. */
  stage: 'hello' | 'proof' | 'verdict' | 'open' | 'closed';
  /** Seals the frames sent after the handshake. */
  sealer: FrameSealer | undefined;
  /** Checks the frames received after the handshake. */
  opener: FrameOpener | undefined;
  /** Inbound: its place in the admission pool until it authenticates. */
  waiting: Waiting | undefined;
  /** An open connection being checked for life, because `waiter` claims the same peer. */
  probe: { readonly waiter: Connection; readonly timer: NodeJS.Timeout } | undefined;
  theirNonce: Buffer | undefined;
  senders: ReadonlySet<ReplicaId> | undefined;
  /** The TCP connection is up (inbound: always). */
  connected: boolean;
  timer: NodeJS.Timeout | undefined;
}

/** Why a connection is closed: a refused handshake or a bad frame after it. */
export type Fault = 'auth' | 'frame';

/** An inbound TCP connection (the raw socket, under TLS) not yet authenticated. */
export interface Waiting extends PendingEntry {
  readonly raw: net.Socket;
  readonly key: string;
}

/** What the parts of one TcpCluster share. */
export interface TcpShared {
  readonly options: ResolvedTcpOptions;
  readonly counters: TcpStats;
  /** The address book, by id (kept by tcp-peers.ts). */
  readonly peers: Map<ReplicaId, Peer>;
  /** Every connection not yet closed. */
  readonly connections: Set<Connection>;
  /** Set by close(): from then on nothing new starts. */
  closed: boolean;
  /** Listening: dialing may start. */
  listeningDone: boolean;
  /** Wakes the replica's loop when messages arrive. */
  wake: (() => void) | undefined;
  /** Tells `onEvent`, which must not break the transport. */
  emit(event: TcpEvent): void;
  /** Counts and reports a message not sent or delivered. */
  drop(peer: ReplicaId | undefined, reason: DropReason): void;
}
