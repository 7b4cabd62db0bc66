// The address book of a TcpCluster: which peers there are and where (option `peers`, addPeer,
// removePeer), and letting go of peers that have left the membership once they are quiet
// (retire), and taking them back (revive).
import type { ReplicaId } from '../core/types.js';
import { BoundedQueue } from './queue.js';
import type { Connection, Peer, TcpShared } from './tcp-link.js';
import { checkPeer, type PeerAddress } from './tcp-options.js';
import type { Outbound } from './tcp-outbound.js';

/** What the address book asks of the connections. */
export interface PeerLinks {
  /** Dials the peer if this side dials it and it has no connection (or attempt) under way. */
  dial(peer: Peer): void;
  /** Closes a connection at once. */
  destroy(c: Connection): void;
}

/** The peers of one TcpCluster; see {@link TcpCluster.registerMembership} for letting go. */
export class AddressBook {
  private retireTimer: NodeJS.Timeout | undefined;
  private members: readonly ReplicaId[] | undefined;

  constructor(
    private readonly shared: TcpShared,
    private readonly outbound: Outbound,
    private readonly links: PeerLinks,
  ) {}

  /** The configuration last registered, if any. */
  get membership(): readonly ReplicaId[] | undefined {
    return this.members;
  }

  /** See {@link TcpCluster.registerMembership}. */
  registerMembership(memberIds: ReplicaId[]): void {
    const previous = this.members;
    this.members = [...memberIds];
    for (const peer of this.shared.peers.values()) {
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

  /** See {@link TcpCluster.addPeer}. */
  addPeer(id: ReplicaId, address: PeerAddress): void {
    const checked = checkPeer(this.shared.options.id, id, address);
    const existing = this.shared.peers.get(id);
    if (existing !== undefined) {
      if (existing.retired) this.revive(existing);
      if (existing.address.host === checked.host && existing.address.port === checked.port) return;
      existing.address = checked;
      if (this.shared.options.id < id) {
        for (const c of [existing.conn, existing.dialing]) if (c !== undefined) this.links.destroy(c);
        existing.conn = existing.dialing = undefined;
        clearTimeout(existing.timer);
        existing.timer = undefined;
        existing.attempt = 0;
        this.links.dial(existing);
      }
      return;
    }
    const peer: Peer = {
      id,
      address: checked,
      queue: new BoundedQueue(
        this.shared.options.maxQueuedMessages,
        this.shared.options.maxQueuedBytes,
        (p) => p.byteLength,
      ),
      conn: undefined,
      dialing: undefined,
      timer: undefined,
      attempt: 0,
      everConnected: false,
      leaving: false,
      retired: false,
      lastActive: 0,
    };
    this.shared.peers.set(id, peer);
    this.links.dial(peer);
  }

  /** See {@link TcpCluster.removePeer}. */
  removePeer(id: ReplicaId): void {
    const peer = this.shared.peers.get(id);
    if (peer === undefined) return;
    this.shared.peers.delete(id);
    this.outbound.forget(peer);
    clearTimeout(peer.timer);
    peer.timer = undefined;
    peer.queue.clear();
    for (const c of [peer.conn, peer.dialing]) if (c !== undefined) this.links.destroy(c);
    for (const c of this.shared.connections) if (c.peer === peer) this.links.destroy(c);
  }

  /** Notes traffic with a leaving peer: it is not quiet, and if let go it is taken back. */
  touch(peer: Peer): void {
    peer.lastActive = Date.now();
    if (peer.retired) this.revive(peer);
  }

  /** Takes a peer that was let go back: it is dialed again. */
  revive(peer: Peer): void {
    peer.retired = false;
    peer.lastActive = Date.now();
    peer.attempt = 0;
    this.links.dial(peer);
    this.scheduleRetire();
  }

  private retire(peer: Peer): void {
    peer.retired = true;
    clearTimeout(peer.timer);
    peer.timer = undefined;
    peer.queue.clear();
    this.outbound.forget(peer);
    for (const c of [peer.conn, peer.dialing]) if (c !== undefined) this.links.destroy(c);
  }

  /** Checks leaving peers every quarter of `retireAfter` while there are any not yet let go. */
  scheduleRetire(): void {
    if (this.shared.closed || this.retireTimer !== undefined) return;
    if (![...this.shared.peers.values()].some((p) => p.leaving && !p.retired)) return;
    this.retireTimer = setTimeout(
      () => {
        this.retireTimer = undefined;
        const now = Date.now();
        for (const p of this.shared.peers.values())
          if (p.leaving && !p.retired && now - p.lastActive >= this.shared.options.retireAfter) this.retire(p);
        this.scheduleRetire();
      },
      Math.max(1, Math.floor(this.shared.options.retireAfter / 4)),
    );
    this.retireTimer.unref();
  }

  /** For close(): stops every timer and drops every queue. */
  stop(): void {
    clearTimeout(this.retireTimer);
    this.retireTimer = undefined;
    for (const peer of this.shared.peers.values()) {
      clearTimeout(peer.timer);
      peer.timer = undefined;
      peer.queue.clear();
    }
  }
}
