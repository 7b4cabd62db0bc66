// What a TcpCluster reports: its counters and the events it tells `onEvent`.
import type { ReplicaId } from '../core/types.js';

/** Counters since construction. Bytes are those of the stream (TLS plaintext), handshakes included. */
export interface TcpStats {
  /** Message frames received from authenticated peers (valid or not). */
  framesIn: number;
  /** Message frames written to sockets. */
  framesOut: number;
  /** Bytes read from sockets. */
  bytesIn: number;
  /** Bytes written to sockets. */
  bytesOut: number;
  /**
   * Connections closed for an oversized, truncated, undecodable or invalid frame, a spoofed sender,
   * or a frame whose MAC is wrong (forged, replayed, reordered; also counted in `forgedFrames`).
   */
  badFrames: number;
  /** Of `badFrames`: frames that failed the per-frame authentication. */
  forgedFrames: number;
  /**
   * Connections refused: wrong secret, unknown or misaddressed replica, codec mismatch, TLS failure,
   * timeout, too many connections authenticating (refused or pushed out to make room).
   */
  authFailures: number;
  /** Connections refused because another live connection holds the same replica id (either side). */
  identityConflicts: number;
  /** Messages dropped: queue or inbox full, unknown peer, too large, unencodable, sent after close. */
  dropped: number;
  /** Connections re-established with a peer that had been connected before. */
  reconnects: number;
}

/** Why a message was dropped rather than delivered or sent. */
export type DropReason = 'queue-full' | 'inbox-full' | 'unknown-peer' | 'too-large' | 'encode-failed' | 'closed';

/** Something a {@link TcpCluster} reports through `onEvent`, for logs and metrics. */
export interface TcpEvent {
  /**
   * What happened: `listening`; `connected` / `disconnected` (an authenticated peer);
   * `authFailure` (a refused connection); `badFrame` (a connection closed for a bad frame);
   * `dropped` (a message not delivered or sent); `error` (a socket error); `identityConflict`: two
   * processes claim one replica id. On the acceptor: a dialer claiming `peer` was refused because
   * `peer`'s connection is live (`remote`: the refused one). On the refused dialer: `peer` refused
   * it because another process with this replica's id is connected to it; this process should stop.
   */
  readonly type:
    'listening' | 'connected' | 'disconnected' | 'authFailure' | 'badFrame' | 'dropped' | 'error' | 'identityConflict';
  /** The peer concerned, when known. */
  readonly peer?: ReplicaId | undefined;
  /** `listening`: the bound host. */
  readonly host?: string;
  /** `listening`: the bound port. */
  readonly port?: number;
  /** `connected`, `identityConflict`: whether this side dialed (`identityConflict` and true: this one was refused). */
  readonly outbound?: boolean;
  /** `authFailure`, `identityConflict`: the remote address. */
  readonly remote?: string;
  /** `authFailure`, `badFrame`, `dropped`, `identityConflict`: why. */
  readonly reason?: string;
  /** `error`: the socket error. */
  readonly error?: Error;
}
