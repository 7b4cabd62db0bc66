// The connections of a TcpCluster, from socket to close: dialing (and redialing with backoff),
// admitting inbound connections, the handshake (hello, proofs, the acceptor's verdict on a
// dialer whose id is already connected), then reading authenticated frames into the inbox.
import net from 'node:net';
import tls from 'node:tls';
import type { Codec } from '../core/codec.js';
import type { Message } from '../core/message.js';
import { isValidMessage } from '../core/validate.js';
import type { ReplicaId, StateMachineTransition } from '../core/types.js';
import { PendingPool } from './admission.js';
import { FrameDecoder, FrameTooLargeError } from './frame.js';
import { FrameKind, FrameOpener, FrameSealer, frameKey, SEAL_OVERHEAD, splitBatch } from './frame-auth.js';
import {
  computeProof,
  decodeHello,
  encodeHello,
  MAX_HANDSHAKE_FRAME,
  newNonce,
  PROOF_BYTES,
  verifyHello,
  verifyProof,
  type Transcript,
} from './handshake.js';
import type { BoundedQueue } from './queue.js';
import type { Connection, Fault, Peer, TcpShared, Waiting } from './tcp-link.js';
import type { TcpTlsOptions } from './tcp-options.js';
import type { Outbound } from './tcp-outbound.js';

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

/** What the connections ask of the rest of the cluster. */
export interface ConnectionHooks {
  /** A leaving peer connected again: check it for quiet again later. */
  scheduleRetire(): void;
  /** A socket closed: close() may be done. */
  settleClose(): void;
}

/** Every connection of one TcpCluster, and the pool of inbound ones still authenticating. */
export class Connections<T extends StateMachineTransition, D> {
  private readonly id: ReplicaId;
  private readonly secret: Buffer;
  private readonly tlsOptions: TcpTlsOptions | undefined;
  private readonly codec: Codec;
  private readonly codecName: string;
  private readonly maxFrameBytes: number;
  private readonly minDelay: number;
  private readonly maxDelay: number;
  private readonly handshakeTimeout: number;
  private readonly pending: PendingPool<Waiting>;
  /** The admission pool's entries by remote address:port (how a TLS socket finds its raw socket's). */
  private readonly waiting = new Map<string, Waiting>();

  constructor(
    private readonly shared: TcpShared,
    private readonly outbound: Outbound,
    private readonly inbox: BoundedQueue<Message<T, D>>,
    private readonly hooks: ConnectionHooks,
  ) {
    const o = shared.options;
    this.id = o.id;
    this.secret = o.secret;
    this.tlsOptions = o.tls;
    this.codec = o.codec;
    this.codecName = o.codecName;
    this.maxFrameBytes = o.maxFrameBytes;
    this.minDelay = o.minDelay;
    this.maxDelay = o.maxDelay;
    this.handshakeTimeout = o.handshakeTimeout;
    this.pending = new PendingPool({
      soft: PENDING_SOFT,
      hard: PENDING_HARD,
      perAddress: PENDING_PER_ADDRESS,
      evictAfter: Math.min(PENDING_EVICT_AFTER, this.handshakeTimeout),
    });
  }

  /** Dials `peer` if this side dials it (the lower id) and nothing is under way. */
  dial(peer: Peer): void {
    if (
      this.shared.closed ||
      !this.shared.listeningDone ||
      peer.retired ||
      peer.id < this.id ||
      peer.conn !== undefined ||
      peer.dialing !== undefined ||
      peer.timer !== undefined
    )
      return;
    const { host, port } = peer.address;
    const t = this.tlsOptions;
    const socket =
      t === undefined
        ? net.connect({ host, port })
        : tls.connect({
            host,
            port,
            key: t.key,
            cert: t.cert,
            ca: t.ca as tls.SecureContextOptions['ca'],
            rejectUnauthorized: true,
          });
    const c = this.track(socket, true, `${host}:${port}`, peer);
    peer.dialing = c;
    socket.once('connect', () => {
      c.connected = true;
      socket.setNoDelay(true);
      socket.setKeepAlive(true, KEEPALIVE_MS);
      // Over TLS this waits in the socket until the TLS handshake is done.
      const hello = { sender: this.id, receiver: peer.id, nonce: c.nonce, codec: this.codecName };
      this.outbound.write(c, [encodeHello({ ...hello, role: 'dialer' }, this.secret)]);
    });
  }

  /** Takes an inbound socket (under TLS, once its TLS handshake is done) into the handshake. */
  accept(socket: net.Socket): void {
    if (this.shared.closed) {
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
  admit(raw: net.Socket): boolean {
    if (this.shared.closed) {
      raw.destroy();
      return false;
    }
    const now = Date.now();
    const w: Waiting = { address: raw.remoteAddress ?? '?', since: now, raw, key: remoteOf(raw) };
    const evicted = this.pending.admit(w, now);
    if (evicted !== undefined) {
      const c = [...this.shared.connections].find((x) => x.waiting === evicted);
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
      socket,
      outbound,
      remote,
      peer,
      decoder: new FrameDecoder(MAX_HANDSHAKE_FRAME),
      nonce: newNonce(),
      stage: 'hello',
      theirNonce: undefined,
      senders: undefined,
      connected: false,
      timer: undefined,
      sealer: undefined,
      opener: undefined,
      waiting: undefined,
      probe: undefined,
    };
    this.shared.connections.add(c);
    c.timer = setTimeout(() => {
      c.timer = undefined;
      if (c.stage === 'open' || c.stage === 'closed') return;
      if (c.connected) this.fail(c, 'auth', 'handshake timed out');
      else {
        this.shared.emit({ type: 'error', peer: c.peer?.id, error: new Error(`connecting to ${c.remote} timed out`) });
        this.destroy(c);
      }
    }, this.handshakeTimeout);
    socket.on('data', (chunk: Buffer) => this.onData(c, chunk));
    socket.on('end', () => {
      if (c.stage !== 'closed' && c.decoder.buffered > 0)
        this.fail(c, c.stage === 'open' ? 'frame' : 'auth', 'truncated frame');
    });
    socket.on('drain', () => {
      if (c.peer !== undefined && c.peer.conn === c) this.outbound.schedule(c.peer);
    });
    socket.on('error', (error: Error) => {
      if (c.stage === 'closed') return;
      // A TLS failure after the TCP connection came up is a refused identity, on either side.
      if (this.tlsOptions !== undefined && c.connected && c.stage !== 'open' && !isNetworkError(error)) {
        this.fail(c, 'auth', `tls: ${error.message}`);
      } else {
        this.shared.emit({ type: 'error', peer: c.peer?.id, error });
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
    this.shared.connections.delete(c);
    const peer = c.peer;
    if (peer !== undefined && this.shared.peers.get(peer.id) === peer) {
      if (peer.conn === c) {
        peer.conn = undefined;
        if (wasOpen) this.shared.emit({ type: 'disconnected', peer: peer.id });
      }
      if (peer.dialing === c) peer.dialing = undefined;
      if (c.outbound && peer.conn === undefined && peer.dialing === undefined) this.retry(peer);
    }
    if (c.probe !== undefined) this.probed(c, false);
    this.hooks.settleClose();
  }

  private retry(peer: Peer): void {
    if (this.shared.closed || peer.retired || peer.timer !== undefined) return;
    const step = Math.min(this.maxDelay, this.minDelay * 2 ** peer.attempt);
    peer.attempt = Math.min(peer.attempt + 1, 30);
    const delay = step / 2 + Math.random() * (step / 2);
    peer.timer = setTimeout(() => {
      peer.timer = undefined;
      if (this.shared.peers.get(peer.id) === peer) this.dial(peer);
    }, delay);
  }

  // ---- Receiving ----

  private onData(c: Connection, chunk: Buffer): void {
    if (c.stage === 'closed') return;
    this.shared.counters.bytesIn += chunk.length;
    c.decoder.push(chunk);
    let delivered = 0;
    try {
      for (
        let frame = c.decoder.next();
        frame !== undefined;
        frame = isOpenOrOpening(c) ? c.decoder.next() : undefined
      ) {
        if (c.opener !== undefined) {
          if (this.onSealed(c, frame)) delivered++;
        } else {
          this.onHandshake(c, frame);
        }
      }
    } catch (error) {
      // FrameTooLargeError, or anything unforeseen: never let it escape into the process.
      if (!(error instanceof FrameTooLargeError))
        this.shared.emit({ type: 'error', peer: c.peer?.id, error: asError(error) });
      this.fail(c, c.stage === 'open' ? 'frame' : 'auth', asError(error).message);
    }
    if (delivered > 0 && this.shared.wake !== undefined) {
      try {
        this.shared.wake();
      } catch (error) {
        this.shared.emit({ type: 'error', peer: c.peer?.id, error: asError(error) });
      }
    }
  }

  /** A frame after the handshake: checks its MAC, then handles it by kind. True if a message was delivered. */
  private onSealed(c: Connection, frame: Buffer): boolean {
    const opened = (c.opener as FrameOpener).open(frame);
    if (opened === undefined) {
      this.shared.counters.forgedFrames++;
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
    if (kind === FrameKind.ping && c.stage === 'open') this.outbound.writeSealed(c, FrameKind.pong, EMPTY);
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
    this.shared.counters.framesIn++;
    const peerId = (c.peer as Peer).id;
    let message: unknown;
    try {
      message = this.codec.decode(frame);
    } catch {
      this.fail(c, 'frame', 'undecodable frame');
      return false;
    }
    const accept = this.shared.options.accept;
    const valid = accept
      ? accept(message, peerId)
      : isValidMessage<T, D>(message, c.senders as ReadonlySet<ReplicaId>) && message.from === peerId;
    if (!valid) {
      const from = typeof message === 'object' && message !== null ? (message as { from?: unknown }).from : undefined;
      this.fail(
        c,
        'frame',
        from !== undefined && from !== peerId ? `spoofed sender ${String(from)}` : 'invalid message',
      );
      return false;
    }
    if ((c.peer as Peer).leaving) (c.peer as Peer).lastActive = Date.now();
    if (this.inbox.push(message as Message<T, D>) > 0) this.shared.drop(peerId, 'inbox-full');
    return true;
  }

  private onHandshake(c: Connection, frame: Buffer): void {
    if (c.stage === 'hello') {
      const hello = decodeHello(frame);
      if (hello === undefined) return this.fail(c, 'auth', 'malformed hello');
      if (!verifyHello(this.secret, frame)) return this.fail(c, 'auth', 'hello not signed with the cluster secret');
      if (hello.codec !== this.codecName)
        return this.fail(c, 'auth', `codec mismatch: peer uses ${hello.codec}, this replica ${this.codecName}`);
      if (hello.receiver !== this.id) return this.fail(c, 'auth', `hello addressed to replica ${hello.receiver}`);
      if (c.outbound) {
        const peer = c.peer as Peer;
        if (hello.role !== 'acceptor' || hello.sender !== peer.id)
          return this.fail(c, 'auth', `expected replica ${peer.id}, found ${hello.sender}`);
      } else {
        const peer = this.shared.peers.get(hello.sender);
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
        this.outbound.write(c, [encodeHello({ ...reply, role: 'acceptor' }, this.secret), proof]);
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
      this.outbound.write(c, [computeProof(this.secret, 'dialer', t)]);
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
      this.outbound.writeSealed(c, FrameKind.welcome, EMPTY);
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
    this.outbound.writeSealed(old, FrameKind.ping, EMPTY);
  }

  /** The end of a probe of `old`: `live` if it answered the ping. */
  private probed(old: Connection, live: boolean): void {
    const probe = old.probe;
    if (probe === undefined) return;
    old.probe = undefined;
    clearTimeout(probe.timer);
    const c = probe.waiter;
    // The newcomer went away meanwhile, or this side is closing.
    if (c.stage !== 'verdict' || this.shared.closed) return;
    if (live) {
      this.refuse(c, `replica ${(c.peer as Peer).id} is already connected from ${old.remote} and answering`);
      return;
    }
    this.destroy(old);
    this.outbound.writeSealed(c, FrameKind.welcome, EMPTY);
    this.open(c);
  }

  /** Refuses an authenticated dialer whose id is held by a live connection; tells it why, then closes. */
  private refuse(c: Connection, reason: string): void {
    this.identityConflict(c, reason);
    this.outbound.writeSealed(c, FrameKind.refused, Buffer.from(reason, 'utf8'));
    c.stage = 'closed';
    clearTimeout(c.timer);
    c.timer = undefined;
    c.socket.end(); // after the refusal is written; the dialer closes its side on reading it
    setTimeout(() => c.socket.destroy(), this.handshakeTimeout).unref();
  }

  private identityConflict(c: Connection, reason: string): void {
    this.shared.counters.identityConflicts++;
    this.shared.emit({ type: 'identityConflict', peer: c.peer?.id, outbound: c.outbound, remote: c.remote, reason });
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
      this.hooks.scheduleRetire();
    }
    if (peer.dialing === c) peer.dialing = undefined;
    peer.conn = c;
    if (old !== undefined && old !== c) this.destroy(old); // the peer restarted and dialed anew
    peer.attempt = 0;
    if (peer.everConnected) this.shared.counters.reconnects++;
    peer.everConnected = true;
    this.shared.emit({ type: 'connected', peer: peer.id, outbound: c.outbound });
    if (peer.queue.length > 0) this.outbound.schedule(peer);
  }

  private fail(c: Connection, fault: Fault, reason: string): void {
    if (c.stage === 'closed') return;
    const peer = c.peer;
    if (fault === 'auth') this.authFailure(c.remote, peer?.id, reason);
    else {
      this.shared.counters.badFrames++;
      this.shared.emit({ type: 'badFrame', peer: (peer as Peer).id, reason });
    }
    this.destroy(c);
  }

  /** Counts and reports a refused connection. */
  authFailure(remote: string, peer: ReplicaId | undefined, reason: string): void {
    this.shared.counters.authFailures++;
    this.shared.emit({ type: 'authFailure', remote, peer, reason });
  }

  /** Closes a connection at once; its 'close' event does the bookkeeping. */
  destroy(c: Connection): void {
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
      this.shared.emit({ type: 'disconnected', peer: peer.id });
    }
    if (c.probe !== undefined) this.probed(c, false);
  }
}

/** Whether a connection still reads frames (a fault while handling one closes it). */
const isOpenOrOpening = (c: Connection): boolean => c.stage !== 'closed';

/** `address:port` of a socket's other end. */
export const remoteOf = (socket: net.Socket): string => `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;

const asError = (error: unknown): Error => (error instanceof Error ? error : new Error(String(error)));

const NETWORK_ERRORS = new Set([
  'ECONNRESET',
  'EPIPE',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ECONNABORTED',
]);
const isNetworkError = (error: Error): boolean => NETWORK_ERRORS.has((error as NodeJS.ErrnoException).code ?? '');
