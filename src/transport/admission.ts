/**
 * Which inbound connections that have not yet proven the cluster secret to keep, so that
 * connections held open by someone without it cannot lock real peers out.
 *
 * A refused newcomer is the wrong answer to a full house: the house is full of strangers that
 * hold their connections open, and the newcomer may be the peer. So when more than `soft`
 * connections are waiting, a newcomer takes the place of the oldest one that has had at least
 * `evictAfter` ms to authenticate (a peer needs about one round trip), preferring the remote
 * address that holds the most waiting connections (a flood from one address pushes out its own
 * connections first, not another address's). Only when every waiting connection is younger than
 * that, and `hard` are waiting (or `perAddress` from the newcomer's address), is the newcomer
 * refused. Memory and descriptors stay bounded by `hard`; to lock a peer out, a stranger has to
 * open `hard` connections faster than `evictAfter`, not merely hold them.
 */

/** The limits of a {@link PendingPool}. */
export interface PendingLimits {
  /** Waiting connections beyond which a newcomer replaces an old enough one. */
  readonly soft: number;
  /** Waiting connections beyond which a newcomer is refused if none is old enough to replace. */
  readonly hard: number;
  /** The same, for the connections from one remote address. */
  readonly perAddress: number;
  /** Ms a connection is given to authenticate before a newcomer may replace it. */
  readonly evictAfter: number;
}

/** A waiting connection. */
export interface PendingEntry {
  /** The remote IP address (no port). */
  readonly address: string;
  /** When it was accepted (ms). */
  readonly since: number;
}

/** The inbound connections waiting to authenticate. */
export class PendingPool<E extends PendingEntry> {
  private readonly entries = new Set<E>();

  constructor(private readonly limits: PendingLimits) {}

  get size(): number {
    return this.entries.size;
  }

  /**
   * Admits `entry` or not. To make room it may return one waiting entry to close (no longer in
   * the pool): the caller closes it.
   */
  admit(entry: E, now: number): { readonly admitted: boolean; readonly evicted: E | undefined } {
    const counts = new Map<string, number>();
    for (const e of this.entries) counts.set(e.address, (counts.get(e.address) ?? 0) + 1);
    const fromAddress = counts.get(entry.address) ?? 0;
    let evicted: E | undefined;
    if (this.entries.size >= this.limits.soft || fromAddress >= this.limits.perAddress) {
      // The newcomer's own address when it is the one at its limit, else the busiest address.
      const own = fromAddress >= this.limits.perAddress;
      let best = -1;
      for (const e of this.entries) {
        if (now - e.since < this.limits.evictAfter || (own && e.address !== entry.address)) continue;
        const weight = counts.get(e.address) ?? 0;
        if (weight > best || (weight === best && e.since < (evicted as E).since)) {
          best = weight;
          evicted = e;
        }
      }
      if (evicted !== undefined) this.entries.delete(evicted);
      else if (this.entries.size >= this.limits.hard || fromAddress >= this.limits.perAddress) return { admitted: false, evicted };
    }
    this.entries.add(entry);
    return { admitted: true, evicted };
  }

  /** Forgets an entry (authenticated, or closed). */
  delete(entry: E): void {
    this.entries.delete(entry);
  }
}
