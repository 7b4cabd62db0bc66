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
 *
 * This file is the class; its parts: tcp-options.ts (options and their checks), tcp-events.ts
 * (counters and events), tcp-peers.ts (the address book), tcp-connection.ts (connections and the
 * handshake), tcp-outbound.ts (batching what is sent), tcp-link.ts (the records they share).
 */
import net from 'node:net';
import tls from 'node:tls';
import type { Cluster } from '../core/cluster.js';
import type { Message } from '../core/message.js';
import type { ReplicaId, StateMachineTransition } from '../core/types.js';
import { BoundedQueue } from './queue.js';
import { Connections, remoteOf } from './tcp-connection.js';
import type { DropReason, TcpEvent, TcpStats } from './tcp-events.js';
import type { TcpShared } from './tcp-link.js';
import { resolveOptions, type PeerAddress, type ResolvedTcpOptions, type TcpClusterOptions } from './tcp-options.js';
import { Outbound } from './tcp-outbound.js';
import { AddressBook } from './tcp-peers.js';
// For the doc comments' links.
import type { isValidMessage } from '../core/validate.js';
import type { PendingPool } from './admission.js';

/**
 * A {@link Cluster} over TCP. Construct, {@link listen}, hand to a {@link Replica}; {@link close}
 * ends it (and makes {@link halt} return true, so the replica's `start()` loop returns).
 */
export class TcpCluster<T extends StateMachineTransition, D = unknown> implements Cluster<T, D> {
  /** This replica's id. */
  readonly id: ReplicaId;
  private readonly options: ResolvedTcpOptions;
  private readonly shared: TcpShared;
  private readonly book: AddressBook;
  private readonly outbound: Outbound;
  private readonly links: Connections<T, D>;
  /** Raw sockets of a TLS server, tracked from before their TLS handshake so close() can end them. */
  private readonly rawSockets = new Set<net.Socket>();
  private readonly inbox: BoundedQueue<Message<T, D>>;
  private readonly counters: TcpStats = {
    framesIn: 0,
    framesOut: 0,
    bytesIn: 0,
    bytesOut: 0,
    badFrames: 0,
    forgedFrames: 0,
    authFailures: 0,
    identityConflicts: 0,
    dropped: 0,
    reconnects: 0,
  };
  private server: net.Server | undefined;
  private listening: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  private serverClosed = true;
  private closeWaiter: (() => void) | undefined;
  private leader: ReplicaId | undefined;
  /**
   * Every message encoded in the current synchronous burst of sends, with its bytes: the leader
   * hands every follower at the same point the same AppendEntries objects, encoded once. A map,
   * not the last one: a tick sends each follower its whole run of appends before the next's.
   */
  private readonly encoded = new Map<Message<T, D>, Uint8Array>();

  /**
   * Checks the options (a TypeError names the first one that is wrong) and adds the peers;
   * opens nothing until {@link listen}.
   * @param options - See {@link TcpClusterOptions}.
   */
  constructor(options: TcpClusterOptions) {
    const o = resolveOptions(options);
    this.options = o;
    this.id = o.id;
    this.inbox = new BoundedQueue(o.maxInboxMessages);
    const onEvent = o.onEvent;
    const counters = this.counters;
    const emit = (event: TcpEvent): void => {
      if (onEvent === undefined) return;
      try {
        onEvent(event);
      } catch {
        // A logging hook must not break the transport.
      }
    };
    const drop = (peer: ReplicaId | undefined, reason: DropReason): void => {
      counters.dropped++;
      emit({ type: 'dropped', peer, reason });
    };
    this.shared = {
      options: o,
      counters,
      peers: new Map(),
      connections: new Set(),
      closed: false,
      listeningDone: false,
      wake: undefined,
      emit,
      drop,
    };
    this.outbound = new Outbound(this.shared);
    this.links = new Connections(this.shared, this.outbound, this.inbox, {
      scheduleRetire: () => this.book.scheduleRetire(),
      settleClose: () => this.settleClose(),
    });
    this.book = new AddressBook(this.shared, this.outbound, this.links);
    for (const [id, address] of o.peers) this.addPeer(id, address);
  }

  // ---- Cluster ----

  sendMessage(toId: ReplicaId, message: Message<T, D>): void {
    const shared = this.shared;
    if (shared.closed) return shared.drop(toId, 'closed');
    const peer = shared.peers.get(toId);
    if (peer === undefined) return shared.drop(toId, 'unknown-peer');
    if (peer.leaving) this.book.touch(peer);
    let payload: Uint8Array;
    try {
      const known = this.encoded.get(message);
      if (known !== undefined) payload = known;
      else {
        payload = this.options.codec.encode(message);
        if (this.encoded.size === 0) queueMicrotask(() => this.encoded.clear());
        this.encoded.set(message, payload);
      }
    } catch (error) {
      shared.emit({ type: 'error', peer: toId, error: error instanceof Error ? error : new Error(String(error)) });
      return shared.drop(toId, 'encode-failed');
    }
    if (!(payload instanceof Uint8Array)) return shared.drop(toId, 'encode-failed');
    if (payload.byteLength > this.options.maxFrameBytes) return shared.drop(toId, 'too-large');
    for (let n = peer.queue.push(payload); n > 0; n--) shared.drop(toId, 'queue-full');
    if (peer.conn !== undefined) this.outbound.schedule(peer);
  }

  receiveMessages(): Message<T, D>[] {
    return this.inbox.drain();
  }

  halt(): boolean {
    return this.shared.closed;
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
    this.book.registerMembership(memberIds);
  }

  registerWakeup(wake: () => void): void {
    this.shared.wake = wake;
  }

  // ---- Lifecycle ----

  /**
   * Starts listening and dialing; resolves once listening. Rejects if the address cannot be bound
   * or after {@link close}.
   */
  listen(): Promise<void> {
    if (this.shared.closed) return Promise.reject(new Error('TcpCluster: listen() after close()'));
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
    const address = this.shared.listeningDone ? this.server?.address() : undefined;
    if (address === undefined || address === null || typeof address === 'string')
      throw new Error('TcpCluster: not listening');
    return address.port;
  }

  /** The leader last registered by the replica. */
  get leaderId(): ReplicaId | undefined {
    return this.leader;
  }

  /** The configuration last registered by the replica, if any. */
  get membership(): readonly ReplicaId[] | undefined {
    return this.book.membership;
  }

  /** A copy of the counters. */
  get stats(): Readonly<TcpStats> {
    return { ...this.counters };
  }

  /** Peers let go after leaving the membership (see {@link registerMembership}): no connection, not dialed. */
  get retiredPeers(): ReplicaId[] {
    return [...this.shared.peers.values()].filter((p) => p.retired).map((p) => p.id);
  }

  /** Peers with an authenticated connection now. */
  get connectedPeers(): ReplicaId[] {
    return [...this.shared.peers.values()].filter((p) => p.conn !== undefined).map((p) => p.id);
  }

  /** Peers known, with their addresses. */
  get peerAddresses(): ReadonlyMap<ReplicaId, PeerAddress> {
    return new Map([...this.shared.peers.values()].map((p) => [p.id, p.address]));
  }

  /**
   * Adds a peer (or moves one to a new address, reconnecting). The lower id of a pair dials, so
   * both replicas must know each other for their connection to come up.
   */
  addPeer(id: ReplicaId, address: PeerAddress): void {
    this.book.addPeer(id, address);
  }

  /** Forgets a peer: closes its connection and drops its queue. Its connections are refused from now on. */
  removePeer(id: ReplicaId): void {
    this.book.removePeer(id);
  }

  // ---- Listening ----

  private async bind(): Promise<void> {
    const t = this.options.tls;
    const server =
      t === undefined
        ? net.createServer()
        : tls.createServer(
            {
              key: t.key,
              cert: t.cert,
              ca: t.ca as tls.SecureContextOptions['ca'],
              requestCert: true,
              rejectUnauthorized: true,
              handshakeTimeout: this.options.handshakeTimeout,
            },
            (socket) => this.links.accept(socket),
          );
    if (t !== undefined) {
      server.on('connection', (raw: net.Socket) => {
        this.rawSockets.add(raw);
        raw.on('close', () => {
          this.rawSockets.delete(raw);
          this.settleClose();
        });
        if (this.shared.closed) raw.destroy();
      });
      server.on('tlsClientError', (error: Error, socket: tls.TLSSocket) => {
        this.links.authFailure(remoteOf(socket), undefined, `tls: ${error.message}`);
      });
    }
    // Admission covers the raw TCP connection, so under TLS it covers the TLS handshake too.
    server.on('connection', (raw: net.Socket) => {
      if (this.links.admit(raw) && t === undefined) this.links.accept(raw);
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
      server.listen({ host: this.options.listen.host, port: this.options.listen.port }, () => {
        server.off('error', onError);
        resolve();
      });
    });
    server.on('error', (error: Error) => this.shared.emit({ type: 'error', peer: undefined, error }));
    if (this.shared.closed) return; // close() was called meanwhile: it closes the server
    this.shared.listeningDone = true;
    this.shared.emit({ type: 'listening', host: this.options.listen.host, port: this.port });
    for (const peer of this.shared.peers.values()) this.links.dial(peer);
  }

  // ---- Closing ----

  private async shutdown(): Promise<void> {
    this.shared.closed = true;
    if (this.shared.wake !== undefined) {
      try {
        this.shared.wake(); // let a sleeping replica loop see halt() at once
      } catch {
        // ignored: closing proceeds
      }
    }
    await this.listening?.catch(() => undefined);
    this.outbound.clear();
    this.book.stop();
    const done = new Promise<void>((resolve) => {
      this.closeWaiter = resolve;
    });
    for (const c of this.shared.connections) this.links.destroy(c);
    for (const raw of this.rawSockets) raw.destroy();
    this.server?.close();
    this.settleClose();
    await done;
  }

  private settleClose(): void {
    if (
      this.closeWaiter !== undefined &&
      this.serverClosed &&
      this.shared.connections.size === 0 &&
      this.rawSockets.size === 0
    ) {
      const resolve = this.closeWaiter;
      this.closeWaiter = undefined;
      resolve();
    }
  }
}
