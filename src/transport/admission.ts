/**
 * Which inbound connections that have not yet shown they know the cluster secret to keep, so that
 * connections held open by someone without it cannot lock real peers out.
 *
 * A peer shows it on its first frame (a hello signed with the secret, see handshake.ts), so a
 * connection stays in this pool for about one read; a stranger's stays until it times out. A
 * refused newcomer is the wrong answer to a full house: the house is full of strangers holding
 * their connections open, and the newcomer may be the peer. So a newcomer is always admitted, and
 * room is made for it: beyond `soft` waiting connections, by closing the oldest that has had
 * `evictAfter` ms to say hello; beyond `hard` (or `perAddress` from the newcomer's address), by
 * closing the oldest whatever its age. The victim comes from the remote address holding the most
 * waiting connections (the newcomer's own once it is at `perAddress`), so a flood from one address
 * pushes out its own connections, not another address's. Memory and descriptors stay bounded by
 * `hard`; to push a peer out before its hello is read, a stranger must open `perAddress`
 * connections within that moment, not merely hold connections open.
 */

/** The limits of a {@link PendingPool}. */
export interface PendingLimits {
  /** Waiting connections beyond which a newcomer replaces one that has had `evictAfter` ms. */
  readonly soft: number;
  /** Waiting connections beyond which a newcomer replaces the oldest, whatever its age. */
  readonly hard: number;
  /** The same, for the connections from one remote address. */
  readonly perAddress: number;
  /** Ms a connection is given to say hello before a newcomer may replace it. */
  readonly evictAfter: number;
}

/** A waiting connection. */
export interface PendingEntry {
  /** The remote IP address (no port). */
  readonly address: string;
  /** When it was accepted (ms). */
  readonly since: number;
}

/** The inbound connections waiting to show they know the secret. */
export class PendingPool<E extends PendingEntry> {
  private readonly entries = new Set<E>();

  constructor(private readonly limits: PendingLimits) {}

  get size(): number {
    return this.entries.size;
  }

  /** Admits `entry`; returns the waiting entry it replaces, if room had to be made (the caller closes it). */
  admit(entry: E, now: number): E | undefined {
    const counts = new Map<string, number>();
    for (const e of this.entries) counts.set(e.address, (counts.get(e.address) ?? 0) + 1);
    const own = (counts.get(entry.address) ?? 0) >= this.limits.perAddress;
    let victim: E | undefined;
    if (own || this.entries.size >= this.limits.soft) {
      const full = own || this.entries.size >= this.limits.hard;
      victim = this.pick(counts, own ? entry.address : undefined, now - this.limits.evictAfter);
      if (victim === undefined && full) victim = this.pick(counts, own ? entry.address : undefined, Infinity);
      if (victim !== undefined) this.entries.delete(victim);
    }
    this.entries.add(entry);
    return victim;
  }

  /** Forgets an entry (it said hello, or closed). */
  delete(entry: E): void {
    this.entries.delete(entry);
  }

  /** From `address` (or any), accepted at or before `before`: the busiest address's oldest. */
  private pick(counts: ReadonlyMap<string, number>, address: string | undefined, before: number): E | undefined {
    let best: E | undefined;
    let weight = -1;
    for (const e of this.entries) {
      if (e.since > before || (address !== undefined && e.address !== address)) continue;
      const w = counts.get(e.address) ?? 0;
      if (w > weight || (w === weight && e.since < (best as E).since)) {
        weight = w;
        best = e;
      }
    }
    return best;
  }
}
