import type { SnapshotMeta } from './message.js';

/**
 * What a leader knows of one follower (etcd's "progress"). A follower is in one of three states:
 * - `probe`: its log's agreement point is unknown; one AppendEntries at a time searches for it;
 * - `replicate`: it agrees up to `match`; entries stream optimistically, up to a window of messages;
 * - `snapshot`: it needs entries the leader compacted, and a snapshot is on its way in chunks.
 */
export class Progress {
  match = 0;
  state: 'probe' | 'replicate' | 'snapshot' = 'probe';
  /** In probe and snapshot state: a message is out and the next waits for its answer or a heartbeat. */
  paused = false;
  /** In replicate state: the last index of each message sent and not yet acknowledged, oldest first. */
  readonly inflight: number[] = [];
  /**
   * In snapshot state: the snapshot being sent as JSON text (Figure 13's chunks), where the next
   * chunk starts, how much the follower said it holds, and what it said at the last heartbeat.
   */
  chunks: { meta: SnapshotMeta; text: string; sent: number; acked: number; ackedAtHeartbeat: number } | undefined;
  /** `match` at the last heartbeat: a window that does not move between heartbeats has lost a message. */
  matchAtHeartbeat = 0;
  /** Heard from since the last check-quorum. */
  active = false;
  /** The latest read round it has answered. */
  round = 0;

  constructor(public next: number) {}

  becomeProbe(): void { this.restart('probe'); }

  /** Enters `state` with nothing in flight: the next message carries the entry after `match`. */
  private restart(state: 'probe' | 'replicate'): void {
    this.state = state;
    this.next = this.match + 1;
    this.paused = false;
    this.inflight.length = 0;
    this.chunks = undefined;
  }

  /** Records an acknowledgement; returns whether `match` moved. Stale answers never move it back. */
  acknowledge(index: number): boolean {
    const moved = index > this.match;
    if (moved) this.match = index;
    if (this.state !== 'replicate') this.restart('replicate');
    this.next = Math.max(this.next, this.match + 1);
    while (this.inflight.length > 0 && this.inflight[0]! <= this.match) this.inflight.shift();
    return moved;
  }

  /**
   * Records a rejection of the AppendEntries whose prevLogIndex was `rejected`; `probeFrom` is
   * the leader's guess of the last agreeing index. Returns false for a stale answer.
   */
  reject(rejected: number, probeFrom: number): boolean {
    if (rejected <= this.match) return false;
    if (this.state === 'replicate') {
      this.becomeProbe();
      return true;
    }
    if (this.state === 'snapshot' || rejected !== this.next - 1) return false;
    this.next = Math.max(Math.min(rejected, probeFrom + 1), this.match + 1);
    this.paused = false;
    return true;
  }
}
