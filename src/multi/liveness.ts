import type { ReplicaId } from '../core/types.js';

/**
 * Which peer processes are up, as far as their envelopes tell: a peer is suspected once nothing
 * came from it for `suspectAfter` ms, and is up again as soon as something does. A new epoch is
 * a restart, however quick.
 */
export class Liveness {
  private readonly peers = new Map<ReplicaId, { at: number; epoch: number; suspected: boolean }>();

  constructor(
    private readonly suspectAfter: number,
    private readonly since: number,
  ) {}

  /** Records an envelope from `peer`; true if that changes its standing (it was suspected, or restarted). */
  heard(peer: ReplicaId, epoch: number, now: number): boolean {
    const p = this.peers.get(peer);
    if (!p) {
      const wasDown = !this.isUp(peer, now); // never heard from for suspectAfter: counted as down
      this.peers.set(peer, { at: now, epoch, suspected: false });
      return wasDown;
    }
    const changed = p.suspected || p.epoch !== epoch;
    p.at = now;
    p.epoch = epoch;
    p.suspected = false;
    return changed;
  }

  /** The peers newly suspected at `now`. */
  check(now: number): ReplicaId[] {
    const down: ReplicaId[] = [];
    for (const [id, p] of this.peers)
      if (!p.suspected && now - p.at > this.suspectAfter) {
        p.suspected = true;
        down.push(id);
      }
    return down;
  }

  /** The earliest time {@link Liveness.check} may suspect a peer heard from (Infinity if none can be). */
  nextCheck(): number {
    let at = Infinity;
    for (const p of this.peers.values()) if (!p.suspected) at = Math.min(at, p.at + this.suspectAfter + 1);
    return at;
  }

  /** Whether `peer` is believed up: heard from within `suspectAfter` (or, never heard, since the host started). */
  isUp(peer: ReplicaId, now: number): boolean {
    const p = this.peers.get(peer);
    return p ? !p.suspected : now - this.since <= this.suspectAfter;
  }
}
