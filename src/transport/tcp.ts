/**
 * A {@link Cluster} over TCP (optionally mutual TLS) for replicas in separate processes or hosts.
 *
 * Connection rule: one connection per pair of replicas, dialed by the replica with the lower id
 * and accepted by the one with the higher id; messages flow both ways on it. The dialer
 * reconnects with capped exponential backoff; the acceptor queues messages until the dialer is
 * back. A new authenticated connection from a peer replaces any older one from it (the peer
 * restarted), so a pair never keeps two.
 *
 * Every connection authenticates before any message frame is read (see handshake.ts), every
 * frame after that carries a MAC keyed from the handshake and numbered (see frame-auth.ts), and
 * every frame is checked for size, decoded defensively and validated with {@link isValidMessage}
 * against the authenticated peer: a connection that breaks a rule is closed and counted in
 * {@link TcpCluster.stats}; nothing from it reaches the replica, and nothing is thrown.
 *
 * Inbound connections still authenticating are admitted by a {@link PendingPool} (admission.ts):
 * strangers holding connections open are pushed out by newcomers rather than locking peers out.
 * One identity, one process: a dialer claiming an id whose connection is open and answering a
 * ping is refused (`identityConflict` on both sides), so two processes with one id never take
 * turns; if the old connection is dead (no answer), the newcomer replaces it.
 *
 * Membership: the address book (option `peers`, {@link TcpCluster.addPeer},
 * {@link TcpCluster.removePeer}) says where replicas are; the replica's configuration, told
 * through {@link TcpCluster.registerMembership}, only decides when a peer that has left it may be
 * let go (its connection closed and no longer redialed). See that method for the rule.
 */
import net from 'node:net';
import tls from 'node:tls';
import type { Cluster } from '../core/cluster.js';
import type { Message } from '../core/message.js';
import { isValidMessage } from '../core/validate.js';
import type { ReplicaId, StateMachineTransition } from '../core/types.js';
import { msgpackCodec, type MessageCodec } from './codec.js';
import { PendingPool, type PendingEntry } from './admission.js';
import { encodeFrames, FrameDecoder, FrameTooLargeError, FRAME_HEADER_BYTES } from './frame.js';
import { FrameKind, FrameOpener, FrameSealer, frameKey, SEAL_OVERHEAD, splitBatch } from './frame-auth.js';
import {
  computeProof,
  decodeHello,
  encodeHello,
  isValidCodecName,
  MAX_HANDSHAKE_FRAME,
  newNonce,
  PROOF_BYTES,
  verifyHello,
  verifyProof,
  type Transcript,
} from './handshake.js';
import { BoundedQueue } from './queue.js';

/** Where a replica accepts TCP connections. */
export interface PeerAddress {
  /** Host name or IP address. */
  readonly host: string;
  /** TCP port; 0 when listening picks a free one. */
  readonly port: number;
}

/** Mutual TLS: each side presents `cert` and accepts only peers whose certificate `ca` signed. */
export interface TcpTlsOptions {
  /** This replica's private key (PEM). */
  readonly key: string | Buffer;
  /** This replica's certificate (PEM), signed by `ca`. */
  readonly cert: string | Buffer;
  /** The certificate authority (or authorities) trusted to sign peers' certificates (PEM). */
  readonly ca: string | Buffer | ReadonlyArray<string | Buffer>;
}

/** How a {@link TcpCluster} is built. Invalid options throw a TypeError naming the problem. */
export interface TcpClusterOptions {
  /** This replica's id. */
  readonly id: ReplicaId;
  /** Where to accept connections. Port 0 picks a free port: read it from {@link TcpCluster.port}. */
  readonly listen: PeerAddress;
  /** The other replicas and where they listen. More can be added with {@link TcpCluster.addPeer}. */
  readonly peers?: Readonly<Record<number, PeerAddress>>;
  /** The cluster secret every replica proves it knows (HMAC-SHA256); at least 16 bytes. */
  readonly secret: string | Buffer;
  /** Mutual TLS; without it every frame is still authenticated (a MAC per frame), but not encrypted. */
  readonly tls?: TcpTlsOptions;
  /**
   * The wire format; every replica must use the same (checked at the handshake).
   * @defaultValue {@link msgpackCodec}
   */
  readonly codec?: MessageCodec;
  /**
   * The largest message, in encoded bytes. A larger incoming frame closes its connection; a larger
   * outgoing message is dropped.
   * @defaultValue 64 MiB
   */
  readonly maxFrameBytes?: number;
  /**
   * Messages queued per peer while it is disconnected or slow; beyond that the oldest are dropped.
   * @defaultValue 10000
   */
  readonly maxQueuedMessages?: number;
  /**
   * Encoded bytes queued per peer while it is disconnected or slow (besides what the socket
   * holds); beyond that the oldest messages are dropped, though the newest is always kept.
   * @defaultValue 64 MiB
   */
  readonly maxQueuedBytes?: number;
  /**
   * Received messages held until {@link TcpCluster.receiveMessages}; beyond that the oldest are dropped.
   * @defaultValue 100000
   */
  readonly maxInboxMessages?: number;
  /**
   * Reconnection delays in ms: the n-th consecutive failure waits about `min(maxDelay, minDelay·2ⁿ)`,
   * jittered down by up to half.
   * @defaultValue `{ minDelay: 100, maxDelay: 5000 }`
   */
  readonly reconnect?: {
    /** First delay, in ms. */
    readonly minDelay?: number;
    /** Longest delay, in ms. */
    readonly maxDelay?: number;
  };
  /**
   * Ms a connection has to connect and authenticate before it is closed. Under a flood of
   * inbound connections, one still authenticating after `min(handshakeTimeout, 500)` ms may be
   * closed sooner to make room (see {@link TcpStats.authFailures}). A dialer claiming the id of a
   * connected peer waits up to half of it while that peer's connection is checked for life.
   * @defaultValue 5000
   */
  readonly handshakeTimeout?: number;
  /** Told of connections, failures and drops, for logging and metrics. Must not throw (it is ignored if it does). */
  readonly onEvent?: (event: TcpEvent) => void;
  /**
   * Ms a peer that has left the membership must stay quiet (nothing sent to it, nothing received
   * from it) before its connection is closed and it is no longer redialed; see
   * {@link TcpCluster.registerMembership}.
   * @defaultValue 10000
   */
  readonly retireAfter?: number;
}

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
    | 'listening' | 'connected' | 'disconnected' | 'authFailure' | 'badFrame' | 'dropped' | 'error'
    | 'identityConflict';
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

const MiB = 1024 * 1024;
/** Stop moving queued messages to a socket holding this much unsent data; resume on 'drain'. */
const SOCKET_HIGH_WATER = 4 * MiB;
/** Small frames are copied into batches of about this size, one socket write each. */
const BATCH_BYTES = 256 * 1024;
/** Frames at least this big are written as they are, not copied into a batch. */
const LARGE_FRAME = 64 * 1024;
/** Inbound connections yet to say hello beyond which a newcomer replaces one that had time to (admission.ts). */
const PENDING_SOFT = 64;
/** Inbound connections yet to say hello beyond which a newcomer replaces the oldest. */
const PENDING_HARD = 256;
/** The same, from one remote address. */
const PENDING_PER_ADDRESS = 128;
/** Ms an inbound connection is given to say hello before a newcomer may replace it (capped by handshakeTimeout). */
const PENDING_EVICT_AFTER = 500;
const EMPTY = Buffer.alloc(0);
const KEEPALIVE_MS = 5000;

interface Peer {
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

interface Connection {
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

type Fault = 'auth' | 'frame';

/** An inbound TCP connection (the raw socket, under TLS) not yet authenticated. */
interface Waiting extends PendingEntry {
  readonly raw: net.Socket;
  readonly key: string;
}

/**
 * A {@link Cluster} over TCP. Construct, {@link listen}, hand to a {@link Replica}; {@link close}
 * ends it (and makes {@link halt} return true, so the replica's `start()` loop returns).
 */
export class TcpCluster<T extends StateMachineTransition, D = unknown> implements Cluster<T, D> {
  /** This replica's id. */
  readonly id: ReplicaId;
  private readonly listenAddress: PeerAddress;
  private readonly secret: Buffer;
  private readonly tlsOptions: TcpTlsOptions | undefined;
  private readonly codec: MessageCodec;
  private readonly codecName: string;
  private readonly maxFrameBytes: number;
  private readonly maxQueuedMessages: number;
  private readonly maxQueuedBytes: number;
  private readonly minDelay: number;
  private readonly maxDelay: number;
  private readonly handshakeTimeout: number;
  private readonly retireAfter: number;
  private retireTimer: NodeJS.Timeout | undefined;
  private readonly onEvent: ((event: TcpEvent) => void) | undefined;

  private readonly peers = new Map<ReplicaId, Peer>();
  private readonly connections = new Set<Connection>();
  /** Raw sockets of a TLS server, tracked from before their TLS handshake so close() can end them. */
  private readonly rawSockets = new Set<net.Socket>();
  private readonly inbox: BoundedQueue<Message<T, D>>;
  private readonly dirty = new Set<Peer>();
  private readonly counters: TcpStats = {
    framesIn: 0, framesOut: 0, bytesIn: 0, bytesOut: 0, badFrames: 0, forgedFrames: 0, authFailures: 0,
    identityConflicts: 0, dropped: 0, reconnects: 0,
  };
  private readonly pending: PendingPool<Waiting>;
  /** The admission pool's entries by remote address:port (how a TLS socket finds its raw socket's). */
  private readonly waiting = new Map<string, Waiting>();
  private server: net.Server | undefined;
  private listening: Promise<void> | undefined;
  private listeningDone = false;
  /** A flush is queued as a microtask: it runs once the sender's synchronous burst of sendMessage calls is over. */
  private flushScheduled = false;
  private wake: (() => void) | undefined;
  private closed = false;
  private closing: Promise<void> | undefined;
  private serverClosed = true;
  private closeWaiter: (() => void) | undefined;
  private leader: ReplicaId | undefined;
  private members: readonly ReplicaId[] | undefined;

  constructor(options: TcpClusterOptions) {
    if (typeof options !== 'object' || options === null) throw new TypeError('TcpCluster: options must be an object');
    const o = options;
    if (!Number.isSafeInteger(o.id)) throw new TypeError(`TcpCluster: options.id must be an integer, got ${String(o.id)}`);
    this.id = o.id;
    this.listenAddress = checkAddress(o.listen, 'options.listen', true);
    const secret = typeof o.secret === 'string' ? Buffer.from(o.secret, 'utf8') : o.secret;
    if (!Buffer.isBuffer(secret) || secret.length < 16) throw new TypeError('TcpCluster: options.secret must be a string or Buffer of at least 16 bytes');
    this.secret = Buffer.from(secret);
    if (o.tls !== undefined) {
      const t = o.tls;
      const pem = (v: unknown): boolean => (typeof v === 'string' || Buffer.isBuffer(v)) && v.length > 0;
      if (typeof t !== 'object' || t === null || !pem(t.key) || !pem(t.cert) || !(pem(t.ca) || (Array.isArray(t.ca) && t.ca.length > 0 && t.ca.every(pem)))) {
        throw new TypeError('TcpCluster: options.tls needs key, cert and ca (PEM strings or Buffers)');
      }
      this.tlsOptions = t;
    }
    this.codec = o.codec ?? msgpackCodec;
    if (typeof this.codec !== 'object' || this.codec === null || typeof this.codec.encode !== 'function' || typeof this.codec.decode !== 'function') {
      throw new TypeError('TcpCluster: options.codec must have encode and decode functions');
    }
    this.codecName = this.codec.name ?? 'custom';
    if (!isValidCodecName(this.codecName)) throw new TypeError('TcpCluster: options.codec.name must be 1 to 64 printable ASCII characters');
    this.maxFrameBytes = checkInt(o.maxFrameBytes, 64 * MiB, 'options.maxFrameBytes', 64, 0xffff_ffff);
    this.maxQueuedMessages = checkInt(o.maxQueuedMessages, 10_000, 'options.maxQueuedMessages', 1);
    this.maxQueuedBytes = checkInt(o.maxQueuedBytes, 64 * MiB, 'options.maxQueuedBytes', 1);
    this.inbox = new BoundedQueue(checkInt(o.maxInboxMessages, 100_000, 'options.maxInboxMessages', 1));
    if (o.reconnect !== undefined && (typeof o.reconnect !== 'object' || o.reconnect === null)) throw new TypeError('TcpCluster: options.reconnect must be an object');
    this.minDelay = checkInt(o.reconnect?.minDelay, 100, 'options.reconnect.minDelay', 1);
    this.maxDelay = checkInt(o.reconnect?.maxDelay, Math.max(5000, this.minDelay), 'options.reconnect.maxDelay', this.minDelay);
    this.handshakeTimeout = checkInt(o.handshakeTimeout, 5000, 'options.handshakeTimeout', 1);
    this.retireAfter = checkInt(o.retireAfter, 10_000, 'options.retireAfter', 1);
    this.pending = new PendingPool({
      soft: PENDING_SOFT, hard: PENDING_HARD, perAddress: PENDING_PER_ADDRESS,
      evictAfter: Math.min(PENDING_EVICT_AFTER, this.handshakeTimeout),
    });
    if (o.onEvent !== undefined && typeof o.onEvent !== 'function') throw new TypeError('TcpCluster: options.onEvent must be a function');
    this.onEvent = o.onEvent;
    if (o.peers !== undefined) {
      if (typeof o.peers !== 'object' || o.peers === null) throw new TypeError('TcpCluster: options.peers must be an object mapping ids to addresses');
      for (const [key, address] of Object.entries(o.peers)) {
        const id = Number(key);
        if (!Number.isSafeInteger(id) || String(id) !== key) throw new TypeError(`TcpCluster: options.peers key ${JSON.stringify(key)} is not an integer id`);
        this.addPeer(id, address);
      }
    }
  }

  // ---- Cluster ----

  sendMessage(toId: ReplicaId, message: Message<T, D>): void {
    if (this.closed) return this.drop(toId, 'closed');
    const peer = this.peers.get(toId);
    if (peer === undefined) return this.drop(toId, 'unknown-peer');
    if (peer.leaving) this.touch(peer);
    let payload: Uint8Array;
    try {
      payload = this.codec.encode(message);
    } catch (error) {
      this.emit({ type: 'error', peer: toId, error: asError(error) });
      return this.drop(toId, 'encode-failed');
    }
    if (!(payload instanceof Uint8Array)) return this.drop(toId, 'encode-failed');
    if (payload.byteLength > this.maxFrameBytes) return this.drop(toId, 'too-large');
    for (let n = peer.queue.push(payload); n > 0; n--) this.drop(toId, 'queue-full');
    if (peer.conn !== undefined) this.schedule(peer);
  }

  receiveMessages(): Message<T, D>[] {
    return this.inbox.drain();
  }

  halt(): boolean {
    return this.closed;
  }

  registerLeader(leaderId: ReplicaId | undefined): void {
    this.leader = leaderId;
  }

  /**
   * Records the configuration (read it back from {@link membership}) and lets go of peers that
   * have left it. It never adds or removes an address: the address book is the `peers` option,
   * {@link addPeer} and {@link removePeer}.
   *
   * The rule, chosen so that it cannot cut a member off by mistake: a peer is let go (its
   * connection closed, its queue dropped, and no longer dialed) only when
   * - an earlier call listed it as a member and the latest call does not (a peer that was never
   *   listed, such as a new member still catching up as a non-voter, is never let go), and
   * - nothing has been sent to it or received from it for `retireAfter` ms since it left (a
   *   leader keeps talking to a member whose removal is not yet committed, and a leader removing
   *   itself keeps talking to its followers until it steps down: neither is ever quiet).
   *
   * Letting go is undone at once by a message sent to the peer (it is dialed again on demand), a
   * connection it makes, a later call that lists it again (a configuration entry truncated
   * away), or {@link addPeer}. So the worst a mistake can cost is one reconnection. A removed
   * process that keeps dialing is accepted and let go again after `retireAfter`; stop it, or
   * {@link removePeer} it to refuse it for good.
   */
  registerMembership(memberIds: ReplicaId[]): void {
    const previous = this.members;
    this.members = [...memberIds];
    for (const peer of this.peers.values()) {
      if (memberIds.includes(peer.id)) {
        if (peer.leaving) {
          peer.leaving = false;
          if (peer.retired) this.revive(peer);
        }
      } else if (!peer.leaving && previous?.includes(peer.id) === true) {
        peer.leaving = true;
        peer.lastActive = Date.now();
      }
    }
    this.scheduleRetire();
  }

  registerWakeup(wake: () => void): void {
    this.wake = wake;
  }

  // ---- Lifecycle ----

  /** Starts listening and dialing; resolves once listening. Rejects if the address cannot be bound or after {@link close}. */
  listen(): Promise<void> {
    if (this.closed) return Promise.reject(new Error('TcpCluster: listen() after close()'));
    this.listening ??= this.bind().catch((error: unknown) => {
      this.listening = undefined;
      throw error;
    });
    return this.listening;
  }

  /** Same as {@link listen}. */
  start(): Promise<void> {
    return this.listen();
  }

  /**
   * Stops listening, closes every connection and timer, and drops what is queued. Resolves once
   * every socket and the server have closed. {@link halt} returns true from the call on.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  /** The bound port, once {@link listen} has resolved. */
  get port(): number {
    const address = this.listeningDone ? this.server?.address() : undefined;
    if (address === undefined || address === null || typeof address === 'string') throw new Error('TcpCluster: not listening');
    return address.port;
  }

  /** The leader last registered by the replica. */
  get leaderId(): ReplicaId | undefined {
    return this.leader;
  }

  /** The configuration last registered by the replica, if any. */
  get membership(): readonly ReplicaId[] | undefined {
    return this.members;
  }

  /** A copy of the counters. */
  get stats(): Readonly<TcpStats> {
    return { ...this.counters };
  }

  /** Peers let go after leaving the membership (see {@link registerMembership}): no connection, not dialed. */
  get retiredPeers(): ReplicaId[] {
    return [...this.peers.values()].filter((p) => p.retired).map((p) => p.id);
  }

  /** Peers with an authenticated connection now. */
  get connectedPeers(): ReplicaId[] {
    return [...this.peers.values()].filter((p) => p.conn !== undefined).map((p) => p.id);
  }

  /** Peers known, with their addresses. */
  get peerAddresses(): ReadonlyMap<ReplicaId, PeerAddress> {
    return new Map([...this.peers.values()].map((p) => [p.id, p.address]));
  }

  /**
   * Adds a peer (or moves one to a new address, reconnecting). The lower id of a pair dials, so
   * both replicas must know each other for their connection to come up.
   */
  addPeer(id: ReplicaId, address: PeerAddress): void {
    if (!Number.isSafeInteger(id)) throw new TypeError(`TcpCluster: peer id must be an integer, got ${String(id)}`);
    if (id === this.id) throw new TypeError(`TcpCluster: peer id ${id} is this replica's own id`);
    const checked = checkAddress(address, `address of peer ${id}`, false);
    const existing = this.peers.get(id);
    if (existing !== undefined) {
      if (existing.retired) this.revive(existing);
      if (existing.address.host === checked.host && existing.address.port === checked.port) return;
      existing.address = checked;
      if (this.id < id) {
        for (const c of [existing.conn, existing.dialing]) if (c !== undefined) this.destroy(c);
        existing.conn = existing.dialing = undefined;
        clearTimeout(existing.timer);
        existing.timer = undefined;
        existing.attempt = 0;
        this.dial(existing);
      }
      return;
    }
    const peer: Peer = {
      id, address: checked, queue: new BoundedQueue(this.maxQueuedMessages, this.maxQueuedBytes, (p) => p.byteLength),
      conn: undefined, dialing: undefined, timer: undefined, attempt: 0, everConnected: false,
      leaving: false, retired: false, lastActive: 0,
    };
    this.peers.set(id, peer);
    this.dial(peer);
  }

  /** Forgets a peer: closes its connection and drops its queue. Its connections are refused from now on. */
  removePeer(id: ReplicaId): void {
    const peer = this.peers.get(id);
    if (peer === undefined) return;
    this.peers.delete(id);
    this.dirty.delete(peer);
    clearTimeout(peer.timer);
    peer.timer = undefined;
    peer.queue.clear();
    for (const c of [peer.conn, peer.dialing]) if (c !== undefined) this.destroy(c);
    for (const c of this.connections) if (c.peer === peer) this.destroy(c);
  }

  // ---- Letting go of departed members ----

  private touch(peer: Peer): void {
    peer.lastActive = Date.now();
    if (peer.retired) this.revive(peer);
  }

  private revive(peer: Peer): void {
    peer.retired = false;
    peer.lastActive = Date.now();
    peer.attempt = 0;
    this.dial(peer);
    this.scheduleRetire();
  }

  private retire(peer: Peer): void {
    peer.retired = true;
    clearTimeout(peer.timer);
    peer.timer = undefined;
    peer.queue.clear();
    this.dirty.delete(peer);
    for (const c of [peer.conn, peer.dialing]) if (c !== undefined) this.destroy(c);
  }

  /** Checks leaving peers every quarter of `retireAfter` while there are any not yet let go. */
  private scheduleRetire(): void {
    if (this.closed || this.retireTimer !== undefined) return;
    if (![...this.peers.values()].some((p) => p.leaving && !p.retired)) return;
    this.retireTimer = setTimeout(() => {
      this.retireTimer = undefined;
      const now = Date.now();
      for (const p of this.peers.values()) if (p.leaving && !p.retired && now - p.lastActive >= this.retireAfter) this.retire(p);
      this.scheduleRetire();
    }, Math.max(1, Math.floor(this.retireAfter / 4)));
    this.retireTimer.unref();
  }

  // ---- Listening and dialing ----

  private async bind(): Promise<void> {
    const t = this.tlsOptions;
    const server = t === undefined
      ? net.createServer()
      : tls.createServer({
        key: t.key, cert: t.cert, ca: t.ca as tls.SecureContextOptions['ca'],
        requestCert: true, rejectUnauthorized: true, handshakeTimeout: this.handshakeTimeout,
      }, (socket) => this.accept(socket));
    if (t !== undefined) {
      server.on('connection', (raw: net.Socket) => {
        this.rawSockets.add(raw);
        raw.on('close', () => {
          this.rawSockets.delete(raw);
          this.settleClose();
        });
        if (this.closed) raw.destroy();
      });
      server.on('tlsClientError', (error: Error, socket: tls.TLSSocket) => {
        this.authFailure(remoteOf(socket), undefined, `tls: ${error.message}`);
      });
    }
    // Admission covers the raw TCP connection, so under TLS it covers the TLS handshake too.
    server.on('connection', (raw: net.Socket) => {
      if (this.admit(raw) && t === undefined) this.accept(raw);
    });
    this.server = server;
    this.serverClosed = false;
    server.on('close', () => {
      this.serverClosed = true;
      this.settleClose();
    });
    await new Promise<void>((resolve, reject) => {
      const onError = (error: Error): void => {
        this.server = undefined;
        this.serverClosed = true;
        reject(error);
      };
      server.once('error', onError);
      server.listen({ host: this.listenAddress.host, port: this.listenAddress.port }, () => {
        server.off('error', onError);
        resolve();
      });
    });
    server.on('error', (error: Error) => this.emit({ type: 'error', peer: undefined, error }));
    if (this.closed) return; // close() was called meanwhile: it closes the server
    this.listeningDone = true;
    this.emit({ type: 'listening', host: this.listenAddress.host, port: this.port });
    for (const peer of this.peers.values()) this.dial(peer);
  }

  private dial(peer: Peer): void {
    if (this.closed || !this.listeningDone || peer.retired || peer.id < this.id || peer.conn !== undefined || peer.dialing !== undefined || peer.timer !== undefined) return;
    const { host, port } = peer.address;
    const t = this.tlsOptions;
    const socket = t === undefined
      ? net.connect({ host, port })
      : tls.connect({ host, port, key: t.key, cert: t.cert, ca: t.ca as tls.SecureContextOptions['ca'], rejectUnauthorized: true });
    const c = this.track(socket, true, `${host}:${port}`, peer);
    peer.dialing = c;
    socket.once('connect', () => {
      c.connected = true;
      socket.setNoDelay(true);
      socket.setKeepAlive(true, KEEPALIVE_MS);
      // Over TLS this waits in the socket until the TLS handshake is done.
      const hello = { sender: this.id, receiver: peer.id, nonce: c.nonce, codec: this.codecName };
      this.write(c, [encodeHello({ ...hello, role: 'dialer' }, this.secret)]);
    });
  }

  private accept(socket: net.Socket): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    const waiting = this.waiting.get(remoteOf(socket));
    if (waiting === undefined) {
      // Pushed out of the admission pool while its TLS handshake was finishing.
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    socket.setKeepAlive(true, KEEPALIVE_MS);
    const c = this.track(socket, false, remoteOf(socket), undefined);
    c.connected = true;
    c.waiting = waiting;
  }

  /** Admits a new inbound TCP connection to the pool of those authenticating, or closes it. */
  private admit(raw: net.Socket): boolean {
    if (this.closed) {
      raw.destroy();
      return false;
    }
    const now = Date.now();
    const w: Waiting = { address: raw.remoteAddress ?? '?', since: now, raw, key: remoteOf(raw) };
    const evicted = this.pending.admit(w, now);
    if (evicted !== undefined) {
      const c = [...this.connections].find((x) => x.waiting === evicted);
      const reason = 'too many connections authenticating: pushed out by a newer one';
      if (c !== undefined) this.fail(c, 'auth', reason);
      else this.authFailure(evicted.key, undefined, reason);
      evicted.raw.destroy();
    }
    this.waiting.set(w.key, w);
    raw.once('close', () => {
      this.pending.delete(w);
      if (this.waiting.get(w.key) === w) this.waiting.delete(w.key);
    });
    return true;
  }

  private track(socket: net.Socket, outbound: boolean, remote: string, peer: Peer | undefined): Connection {
    const c: Connection = {
      socket, outbound, remote, peer, decoder: new FrameDecoder(MAX_HANDSHAKE_FRAME), nonce: newNonce(),
      stage: 'hello', theirNonce: undefined, senders: undefined, connected: false, timer: undefined,
      sealer: undefined, opener: undefined, waiting: undefined, probe: undefined,
    };
    this.connections.add(c);
    c.timer = setTimeout(() => {
      c.timer = undefined;
      if (c.stage === 'open' || c.stage === 'closed') return;
      if (c.connected) this.fail(c, 'auth', 'handshake timed out');
      else {
        this.emit({ type: 'error', peer: c.peer?.id, error: new Error(`connecting to ${c.remote} timed out`) });
        this.destroy(c);
      }
    }, this.handshakeTimeout);
    socket.on('data', (chunk: Buffer) => this.onData(c, chunk));
    socket.on('end', () => {
      if (c.stage !== 'closed' && c.decoder.buffered > 0) this.fail(c, c.stage === 'open' ? 'frame' : 'auth', 'truncated frame');
    });
    socket.on('drain', () => {
      if (c.peer !== undefined && c.peer.conn === c) this.schedule(c.peer);
    });
    socket.on('error', (error: Error) => {
      if (c.stage === 'closed') return;
      // A TLS failure after the TCP connection came up is a refused identity, on either side.
      if (this.tlsOptions !== undefined && c.connected && c.stage !== 'open' && !isNetworkError(error)) {
        this.fail(c, 'auth', `tls: ${error.message}`);
      } else {
        this.emit({ type: 'error', peer: c.peer?.id, error });
      }
    });
    socket.on('close', () => this.onClose(c));
    return c;
  }

  private onClose(c: Connection): void {
    const wasOpen = c.stage === 'open';
    // Closed by the other side (or the network) after connecting but before authenticating: on a
    // dial, the peer refused us (wrong secret, unknown id, certificate); on an accept, a peer gave up.
    if (c.connected && (c.stage === 'hello' || c.stage === 'proof' || c.stage === 'verdict')) {
      this.authFailure(c.remote, c.peer?.id, 'closed during the handshake');
    }
    c.stage = 'closed';
    clearTimeout(c.timer);
    c.timer = undefined;
    c.decoder.reset();
    this.connections.delete(c);
    const peer = c.peer;
    if (peer !== undefined && this.peers.get(peer.id) === peer) {
      if (peer.conn === c) {
        peer.conn = undefined;
        if (wasOpen) this.emit({ type: 'disconnected', peer: peer.id });
      }
      if (peer.dialing === c) peer.dialing = undefined;
      if (c.outbound && peer.conn === undefined && peer.dialing === undefined) this.retry(peer);
    }
    if (c.probe !== undefined) this.probed(c, false);
    this.settleClose();
  }

  private retry(peer: Peer): void {
    if (this.closed || peer.retired || peer.timer !== undefined) return;
    const step = Math.min(this.maxDelay, this.minDelay * 2 ** peer.attempt);
    peer.attempt = Math.min(peer.attempt + 1, 30);
    const delay = step / 2 + Math.random() * (step / 2);
    peer.timer = setTimeout(() => {
      peer.timer = undefined;
      if (this.peers.get(peer.id) === peer) this.dial(peer);
    }, delay);
  }

  // ---- Receiving ----

  private onData(c: Connection, chunk: Buffer): void {
    if (c.stage === 'closed') return;
    this.counters.bytesIn += chunk.length;
    c.decoder.push(chunk);
    let delivered = 0;
    try {
      for (let frame = c.decoder.next(); frame !== undefined; frame = isOpenOrOpening(c) ? c.decoder.next() : undefined) {
        if (c.opener !== undefined) {
          if (this.onSealed(c, frame)) delivered++;
        } else {
          this.onHandshake(c, frame);
        }
      }
    } catch (error) {
      // FrameTooLargeError, or anything unforeseen: never let it escape into the process.
      if (!(error instanceof FrameTooLargeError)) this.emit({ type: 'error', peer: c.peer?.id, error: asError(error) });
      this.fail(c, c.stage === 'open' ? 'frame' : 'auth', asError(error).message);
    }
    if (delivered > 0 && this.wake !== undefined) {
      try {
        this.wake();
      } catch (error) {
        this.emit({ type: 'error', peer: c.peer?.id, error: asError(error) });
      }
    }
  }

  /** A frame after the handshake: checks its MAC, then handles it by kind. True if a message was delivered. */
  private onSealed(c: Connection, frame: Buffer): boolean {
    const opened = (c.opener as FrameOpener).open(frame);
    if (opened === undefined) {
      this.counters.forgedFrames++;
      this.fail(c, 'frame', 'frame authentication failed (forged, replayed or reordered)');
      return false;
    }
    const { kind, body } = opened;
    const peer = c.peer as Peer;
    if (kind === FrameKind.message && c.stage === 'open') return this.onMessage(c, body);
    if (kind === FrameKind.batch && c.stage === 'open') {
      const messages = splitBatch(body);
      if (messages === undefined) this.fail(c, 'frame', 'malformed batch');
      let delivered = false;
      for (const m of messages ?? []) if (c.stage === 'open' && this.onMessage(c, m)) delivered = true;
      return delivered;
    }
    if (kind === FrameKind.ping && c.stage === 'open') this.writeSealed(c, FrameKind.pong, EMPTY);
    else if (kind === FrameKind.pong && c.stage === 'open') {
      if (c.probe !== undefined) this.probed(c, true);
    } else if (kind === FrameKind.welcome && c.outbound && c.stage === 'verdict') this.open(c);
    else if (kind === FrameKind.refused && c.outbound && c.stage === 'verdict') {
      const reason = `replica ${peer.id} refused this replica's id ${this.id}: ${body.toString('utf8')}`;
      this.identityConflict(c, reason);
      peer.attempt = 30; // retry, but seldom: the other process may go away
      this.destroy(c);
    } else this.fail(c, 'frame', `unexpected frame of kind ${kind}`);
    return false;
  }

  private onMessage(c: Connection, frame: Buffer): boolean {
    this.counters.framesIn++;
    const peerId = (c.peer as Peer).id;
    let message: unknown;
    try {
      message = this.codec.decode(frame);
    } catch {
      this.fail(c, 'frame', 'undecodable frame');
      return false;
    }
    if (!isValidMessage<T, D>(message, c.senders as ReadonlySet<ReplicaId>) || message.from !== peerId) {
      const from = typeof message === 'object' && message !== null ? (message as { from?: unknown }).from : undefined;
      this.fail(c, 'frame', from !== undefined && from !== peerId ? `spoofed sender ${String(from)}` : 'invalid message');
      return false;
    }
    if ((c.peer as Peer).leaving) (c.peer as Peer).lastActive = Date.now();
    if (this.inbox.push(message) > 0) this.drop(peerId, 'inbox-full');
    return true;
  }

  private onHandshake(c: Connection, frame: Buffer): void {
    if (c.stage === 'hello') {
      const hello = decodeHello(frame);
      if (hello === undefined) return this.fail(c, 'auth', 'malformed hello');
      if (!verifyHello(this.secret, frame)) return this.fail(c, 'auth', 'hello not signed with the cluster secret');
      if (hello.codec !== this.codecName) return this.fail(c, 'auth', `codec mismatch: peer uses ${hello.codec}, this replica ${this.codecName}`);
      if (hello.receiver !== this.id) return this.fail(c, 'auth', `hello addressed to replica ${hello.receiver}`);
      if (c.outbound) {
        const peer = c.peer as Peer;
        if (hello.role !== 'acceptor' || hello.sender !== peer.id) return this.fail(c, 'auth', `expected replica ${peer.id}, found ${hello.sender}`);
      } else {
        const peer = this.peers.get(hello.sender);
        if (hello.role !== 'dialer') return this.fail(c, 'auth', 'unexpected hello');
        if (peer === undefined) return this.fail(c, 'auth', `unknown replica ${hello.sender}`);
        if (peer.id > this.id) return this.fail(c, 'auth', `replica ${peer.id} dialed, but the lower id dials`);
        c.peer = peer;
        // It knows the secret (or replays a hello): no stranger, so it leaves the admission pool.
        if (c.waiting !== undefined) this.pending.delete(c.waiting);
        c.waiting = undefined;
      }
      c.theirNonce = hello.nonce;
      c.stage = 'proof';
      if (!c.outbound) {
        const reply = { sender: this.id, receiver: hello.sender, nonce: c.nonce, codec: this.codecName };
        const proof = computeProof(this.secret, 'acceptor', this.transcript(c));
        this.write(c, [encodeHello({ ...reply, role: 'acceptor' }, this.secret), proof]);
      }
      return;
    }
    // stage 'proof': the other side's proof
    const role = c.outbound ? 'acceptor' : 'dialer';
    const t = this.transcript(c);
    if (frame.length !== PROOF_BYTES || !verifyProof(this.secret, role, t, frame)) {
      return this.fail(c, 'auth', 'wrong proof of the cluster secret');
    }
    // Every frame from now on is sealed with a key of its direction and checked with the other's.
    c.sealer = new FrameSealer(frameKey(this.secret, c.outbound ? 'dialer' : 'acceptor', t));
    c.opener = new FrameOpener(frameKey(this.secret, role, t));
    c.decoder.maxFrameBytes = this.maxFrameBytes + SEAL_OVERHEAD;
    c.stage = 'verdict';
    if (c.outbound) {
      this.write(c, [computeProof(this.secret, 'dialer', t)]);
      return; // the acceptor's welcome opens it
    }
    this.letIn(c);
  }

  /**
   * The acceptor's verdict on an authenticated dialer. If its peer already has an open
   * connection, that one is pinged: an answer within half the handshake timeout means another
   * live process holds the id, and the newcomer is refused; silence or a close means the old
   * connection is dead (the peer restarted), and the newcomer replaces it.
   */
  private letIn(c: Connection): void {
    const peer = c.peer as Peer;
    const old = peer.conn;
    if (old === undefined || old.stage !== 'open') {
      this.writeSealed(c, FrameKind.welcome, EMPTY);
      this.open(c);
      return;
    }
    if (old.probe !== undefined) {
      this.refuse(c, `replica ${peer.id} is already connecting from ${old.probe.waiter.remote}`);
      return;
    }
    clearTimeout(c.timer); // the probe's own timer decides from now on
    c.timer = undefined;
    const timer = setTimeout(() => this.probed(old, false), Math.max(1, Math.floor(this.handshakeTimeout / 2)));
    old.probe = { waiter: c, timer };
    this.writeSealed(old, FrameKind.ping, EMPTY);
  }

  /** The end of a probe of `old`: `live` if it answered the ping. */
  private probed(old: Connection, live: boolean): void {
    const probe = old.probe;
    if (probe === undefined) return;
    old.probe = undefined;
    clearTimeout(probe.timer);
    const c = probe.waiter;
    if (c.stage !== 'verdict' || this.closed) return; // the newcomer went away meanwhile, or this side is closing
    if (live) {
      this.refuse(c, `replica ${(c.peer as Peer).id} is already connected from ${old.remote} and answering`);
      return;
    }
    this.destroy(old);
    this.writeSealed(c, FrameKind.welcome, EMPTY);
    this.open(c);
  }

  /** Refuses an authenticated dialer whose id is held by a live connection; tells it why, then closes. */
  private refuse(c: Connection, reason: string): void {
    this.identityConflict(c, reason);
    this.writeSealed(c, FrameKind.refused, Buffer.from(reason, 'utf8'));
    c.stage = 'closed';
    clearTimeout(c.timer);
    c.timer = undefined;
    c.socket.end(); // after the refusal is written; the dialer closes its side on reading it
    setTimeout(() => c.socket.destroy(), this.handshakeTimeout).unref();
  }

  private identityConflict(c: Connection, reason: string): void {
    this.counters.identityConflicts++;
    this.emit({ type: 'identityConflict', peer: c.peer?.id, outbound: c.outbound, remote: c.remote, reason });
  }

  private transcript(c: Connection): Transcript {
    const peerId = (c.peer as Peer).id;
    const theirs = c.theirNonce as Buffer;
    return c.outbound
      ? { dialer: this.id, acceptor: peerId, dialerNonce: c.nonce, acceptorNonce: theirs, codec: this.codecName }
      : { dialer: peerId, acceptor: this.id, dialerNonce: theirs, acceptorNonce: c.nonce, codec: this.codecName };
  }

  private open(c: Connection): void {
    const peer = c.peer as Peer;
    c.stage = 'open';
    c.senders = new Set([peer.id]);
    clearTimeout(c.timer);
    c.timer = undefined;
    const old = peer.conn;
    if (peer.leaving) {
      // A peer let go that connects again is served again (and let go again once quiet).
      peer.retired = false;
      peer.lastActive = Date.now();
      this.scheduleRetire();
    }
    if (peer.dialing === c) peer.dialing = undefined;
    peer.conn = c;
    if (old !== undefined && old !== c) this.destroy(old); // the peer restarted and dialed anew
    peer.attempt = 0;
    if (peer.everConnected) this.counters.reconnects++;
    peer.everConnected = true;
    this.emit({ type: 'connected', peer: peer.id, outbound: c.outbound });
    if (peer.queue.length > 0) this.schedule(peer);
  }

  // ---- Sending ----

  private schedule(peer: Peer): void {
    this.dirty.add(peer);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // A microtask rather than setImmediate: every message of a replica's tick is sent in one
    // synchronous loop, so they still leave in one write per peer, but without waiting for the
    // next turn of the event loop (one turn less per hop on the commit path).
    queueMicrotask(() => this.flushAll());
  }

  /** Once per burst of sends: moves each ready peer's queue to its socket in a few large writes. */
  private flushAll(): void {
    if (!this.flushScheduled) return;
    this.flushScheduled = false;
    for (const peer of this.dirty) this.flush(peer);
    this.dirty.clear();
  }

  private flush(peer: Peer): void {
    const c = peer.conn;
    if (c === undefined || c.stage !== 'open') return;
    const socket = c.socket;
    while (peer.queue.length > 0 && socket.writableLength < SOCKET_HIGH_WATER && !socket.destroyed) {
      const first = peer.queue.peek() as Uint8Array;
      if (first.byteLength >= LARGE_FRAME) {
        peer.queue.shift();
        socket.cork();
        for (const part of (c.sealer as FrameSealer).seal(FrameKind.message, first)) this.writeRaw(c, part);
        socket.uncork();
        this.counters.framesOut++;
        continue;
      }
      const batch: Uint8Array[] = [];
      let bytes = 0;
      for (let next = peer.queue.peek(); next !== undefined && next.byteLength < LARGE_FRAME && bytes < BATCH_BYTES; next = peer.queue.peek()) {
        // One authenticated frame carries the batch: it must fit the receiver's frame limit.
        if (batch.length > 0 && bytes + FRAME_HEADER_BYTES + next.byteLength > this.maxFrameBytes) break;
        batch.push(next);
        bytes += FRAME_HEADER_BYTES + next.byteLength;
        peer.queue.shift();
      }
      this.writeRaw(c, (c.sealer as FrameSealer).sealMessages(batch));
      this.counters.framesOut += batch.length;
    }
  }

  /** Writes `payloads` as frames in one write. */
  private write(c: Connection, payloads: Uint8Array[]): void {
    this.writeRaw(c, encodeFrames(payloads));
  }

  /** Writes one authenticated control frame (after the handshake). */
  private writeSealed(c: Connection, kind: FrameKind, body: Uint8Array): void {
    if (c.socket.destroyed) return;
    this.writeRaw(c, Buffer.concat((c.sealer as FrameSealer).seal(kind, body)));
  }

  private writeRaw(c: Connection, bytes: Uint8Array): void {
    if (c.socket.destroyed) return;
    this.counters.bytesOut += bytes.byteLength;
    c.socket.write(bytes);
  }

  // ---- Faults, drops, events ----

  private fail(c: Connection, fault: Fault, reason: string): void {
    if (c.stage === 'closed') return;
    const peer = c.peer;
    if (fault === 'auth') this.authFailure(c.remote, peer?.id, reason);
    else {
      this.counters.badFrames++;
      this.emit({ type: 'badFrame', peer: (peer as Peer).id, reason });
    }
    this.destroy(c);
  }

  private authFailure(remote: string, peer: ReplicaId | undefined, reason: string): void {
    this.counters.authFailures++;
    this.emit({ type: 'authFailure', remote, peer, reason });
  }

  /** Closes a connection at once; its 'close' event does the bookkeeping. */
  private destroy(c: Connection): void {
    if (c.stage === 'closed') return;
    const wasOpen = c.stage === 'open';
    c.stage = 'closed';
    clearTimeout(c.timer);
    c.timer = undefined;
    c.socket.destroy();
    // onClose still runs (from the socket's 'close'), but the stage is already closed: report here.
    const peer = c.peer;
    if (wasOpen && peer !== undefined && peer.conn === c) {
      peer.conn = undefined;
      this.emit({ type: 'disconnected', peer: peer.id });
    }
    if (c.probe !== undefined) this.probed(c, false);
  }

  private drop(peer: ReplicaId | undefined, reason: DropReason): void {
    this.counters.dropped++;
    this.emit({ type: 'dropped', peer, reason });
  }

  private emit(event: TcpEvent): void {
    if (this.onEvent === undefined) return;
    try {
      this.onEvent(event);
    } catch {
      // A logging hook must not break the transport.
    }
  }

  // ---- Closing ----

  private async shutdown(): Promise<void> {
    this.closed = true;
    if (this.wake !== undefined) {
      try {
        this.wake(); // let a sleeping replica loop see halt() at once
      } catch {
        // ignored: closing proceeds
      }
    }
    await this.listening?.catch(() => undefined);
    this.flushScheduled = false;
    this.dirty.clear();
    clearTimeout(this.retireTimer);
    this.retireTimer = undefined;
    for (const peer of this.peers.values()) {
      clearTimeout(peer.timer);
      peer.timer = undefined;
      peer.queue.clear();
    }
    const done = new Promise<void>((resolve) => {
      this.closeWaiter = resolve;
    });
    for (const c of this.connections) this.destroy(c);
    for (const raw of this.rawSockets) raw.destroy();
    this.server?.close();
    this.settleClose();
    await done;
  }

  private settleClose(): void {
    if (this.closeWaiter !== undefined && this.serverClosed && this.connections.size === 0 && this.rawSockets.size === 0) {
      const resolve = this.closeWaiter;
      this.closeWaiter = undefined;
      resolve();
    }
  }
}

function checkInt(value: number | undefined, fallback: number, name: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < min || value > max) throw new TypeError(`TcpCluster: ${name} must be an integer from ${min} to ${max}, got ${String(value)}`);
  return value;
}

function checkAddress(address: unknown, name: string, portZeroOk: boolean): PeerAddress {
  if (typeof address !== 'object' || address === null) throw new TypeError(`TcpCluster: ${name} must be { host, port }`);
  const { host, port } = address as { host?: unknown; port?: unknown };
  if (typeof host !== 'string' || host.length === 0) throw new TypeError(`TcpCluster: ${name}.host must be a non-empty string`);
  if (!Number.isInteger(port) || (port as number) < (portZeroOk ? 0 : 1) || (port as number) > 65535) {
    throw new TypeError(`TcpCluster: ${name}.port must be an integer from ${portZeroOk ? 0 : 1} to 65535, got ${String(port)}`);
  }
  return { host, port: port as number };
}

/** Whether a connection still reads frames (a fault while handling one closes it). */
const isOpenOrOpening = (c: Connection): boolean => c.stage !== 'closed';

const remoteOf = (socket: net.Socket): string => `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;

const asError = (error: unknown): Error => (error instanceof Error ? error : new Error(String(error)));

const NETWORK_ERRORS = new Set(['ECONNRESET', 'EPIPE', 'ECONNREFUSED', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNABORTED']);
const isNetworkError = (error: Error): boolean => NETWORK_ERRORS.has((error as NodeJS.ErrnoException).code ?? '');
