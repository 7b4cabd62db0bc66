// Watches the algorithm from the driver, once per tick, and turns what changed into events and
// log lines. It only reads: the algorithm stays free of logging, and a replica with no listener
// and the silent logger pays a handful of comparisons per tick.
import type { Raft } from '../core/raft.js';
import type { ReplicaId, StateMachineTransition } from '../core/types.js';
import { ReplicaEventHub, type Role } from './events.js';
import type { Logger } from './logger.js';

/** A follower this far behind the leader's log (or being sent a snapshot) is catching up: its progress is logged. */
export const CATCHING_UP_ENTRIES = 10_000;
/** ...until it is within this many entries again (the gap between the two keeps the log quiet at the edge). */
const CAUGHT_UP_ENTRIES = 1_000;
/** Milliseconds between two progress lines of one long piece of work, and between two lines on dropped messages. */
export const PROGRESS_INTERVAL_MS = 5_000;
/** Milliseconds between two looks at the followers' progress on a leader (a busy leader ticks far more often). */
const PROGRESS_CHECK_MS = 100;

interface CatchUp {
  readonly since: number;
  reportedAt: number;
  reportedMatch: number;
}

/** What the observer saw at the end of the last tick. */
interface Seen {
  term: number;
  role: Role;
  leaderId: ReplicaId | undefined;
  commitIndex: number;
  voters: ReplicaId[];
  /** The membership's own array the sorted `voters` were made from. */
  raw: readonly ReplicaId[];
  elections: number;
  snapshotsCreated: number;
  snapshotsInstalled: number;
}

/** Turns each tick's changes into {@link ReplicaEvents} and log lines. */
export class Observer {
  private seen: Seen | undefined;
  /** Made when a follower first falls behind, and dropped when this replica stops leading: most never need it. */
  private catchingUp: Map<ReplicaId, CatchUp> | undefined;
  private droppedReported = { at: -Infinity, count: 0 };
  /** The replica's dropped-message count at the last tick. */
  private droppedSeen = 0;
  private receivingReportedAt = -Infinity;
  private stoppedOnce = false;
  /** When the leader's followers are next looked at, and how many there were then (-1 when not leading). */
  private progressDue = -Infinity;
  private followers = -1;

  constructor(
    private readonly logger: Logger,
    readonly events = new ReplicaEventHub(logger),
  ) {}

  /** The replica loaded its state: what it found becomes the baseline of every later comparison. */
  started<T extends StateMachineTransition, D>(raft: Raft<T, D>): void {
    this.seen = this.read(raft);
    this.droppedSeen = raft.metrics.messagesDropped;
    const { term, commitIndex, voters } = this.seen;
    const fields = {
      term,
      commitIndex,
      lastLogIndex: raft.log.lastIndex,
      snapshotIndex: raft.log.snapshotIndex,
      voters,
    };
    this.logger.info(fields, 'replica started');
  }

  /** Compares the algorithm's state with the last tick's: emits and logs what changed. `now` is the replica's clock. */
  ticked<T extends StateMachineTransition, D>(raft: Raft<T, D>, now: number): void {
    const before = this.seen;
    if (!before) return;
    const m = raft.metrics;
    // Most ticks change at most the commit index and the dropped count: they allocate nothing.
    const same =
      raft.term === before.term &&
      raft.role.kind === before.role &&
      raft.leaderId === before.leaderId &&
      raft.membership.voters === before.raw &&
      m.electionsStarted === before.elections &&
      m.snapshotsCreated === before.snapshotsCreated &&
      m.snapshotsInstalled === before.snapshotsInstalled;
    if (same) this.committed(before, raft.commitIndex);
    else this.changed(raft, before);
    this.dropped(m.messagesDropped - this.droppedSeen, now);
    this.droppedSeen = m.messagesDropped;
    // A lag is a matter of seconds: looked for every PROGRESS_CHECK_MS, at once when followers come or go,
    // and every tick while one catches up (its end is logged as it happens).
    const role = raft.role;
    const followers = role.kind === 'leader' ? role.progress.size : -1;
    if (now >= this.progressDue || followers !== this.followers || this.catchingUp !== undefined || raft.incoming) {
      this.progressDue = now + PROGRESS_CHECK_MS;
      this.followers = followers;
      this.progress(raft, now);
    }
  }

  private committed(seen: Seen, commitIndex: number): void {
    if (commitIndex <= seen.commitIndex) return;
    const previous = seen.commitIndex;
    seen.commitIndex = commitIndex;
    if (this.events.has('commit')) this.events.emit('commit', { commitIndex, previous });
  }

  private changed<T extends StateMachineTransition, D>(raft: Raft<T, D>, before: Seen): void {
    const after = this.read(raft);
    this.seen = after;
    const { term } = after;
    if (after.elections > before.elections) this.logger.info({ term, voters: after.voters }, 'campaigning');
    if (after.term > before.term) this.events.emit('term', { term, previous: before.term });
    if (after.role !== before.role) {
      this.logger.info({ role: after.role, previous: before.role, term }, `became ${after.role}`);
      this.events.emit('role', { role: after.role, previous: before.role, term });
    }
    if (after.leaderId !== before.leaderId) {
      this.logger.info(
        { leaderId: after.leaderId ?? null, term },
        after.leaderId === undefined ? 'no leader known' : 'leader changed',
      );
      this.events.emit('leader', { leaderId: after.leaderId, term });
    }
    if (after.voters !== before.voters && after.voters.join() !== before.voters.join()) {
      this.logger.info({ voters: after.voters, previous: before.voters, term }, 'membership changed');
      this.events.emit('membership', { voters: after.voters, previous: before.voters });
    }
    if (after.snapshotsCreated > before.snapshotsCreated) this.snapshot(raft, 'taken');
    if (after.snapshotsInstalled > before.snapshotsInstalled) this.snapshot(raft, 'installed');
    after.commitIndex = before.commitIndex;
    this.committed(after, raft.commitIndex);
  }

  /** Storage failed: the replica stops for good. */
  storageFailed(error: unknown): void {
    this.logger.error({ err: error }, 'storage failed; the replica stopped for good');
    this.events.emit('storageError', { error });
  }

  /** The replica can tick no more; emitted once, whatever ends it. A `failure` is logged as an error. */
  stopped(error: unknown, failure: boolean): void {
    if (this.stoppedOnce) return;
    this.stoppedOnce = true;
    const reason = error instanceof Error ? error.message : String(error);
    if (failure) this.logger.error({ err: error, reason }, 'replica stopped for good');
    else this.logger.info({ reason }, 'replica stopped');
    this.events.emit('stopped', { error });
  }

  private snapshot<T extends StateMachineTransition, D>(raft: Raft<T, D>, kind: 'taken' | 'installed'): void {
    const index = raft.snapshot?.lastIncludedIndex ?? 0;
    const term = raft.snapshot?.lastIncludedTerm ?? 0;
    const from = kind === 'installed' && raft.leaderId !== undefined ? { from: raft.leaderId } : {};
    this.logger.info({ index, term, ...from }, `snapshot ${kind}`);
    this.events.emit('snapshot', { kind, index, term, ...from });
  }

  private read<T extends StateMachineTransition, D>(raft: Raft<T, D>): Seen {
    const m = raft.metrics;
    const raw = raft.membership.voters;
    return {
      term: raft.term,
      role: raft.role.kind,
      leaderId: raft.leaderId,
      commitIndex: raft.commitIndex,
      // The membership hands out the same array until its configuration changes: sort only then.
      voters: raw === this.seen?.raw ? this.seen.voters : [...raw].sort((a, b) => a - b),
      raw,
      elections: m.electionsStarted,
      snapshotsCreated: m.snapshotsCreated,
      snapshotsInstalled: m.snapshotsInstalled,
    };
  }

  /** Dropped messages are summed and logged at most once per interval: a flood makes one line, not a flood. */
  private dropped(count: number, now: number): void {
    this.droppedReported.count += count;
    if (this.droppedReported.count === 0 || now - this.droppedReported.at < PROGRESS_INTERVAL_MS) return;
    const fields = {
      count: this.droppedReported.count,
      sinceMs: Number.isFinite(this.droppedReported.at) ? now - this.droppedReported.at : undefined,
    };
    this.logger.warn(fields, 'dropped messages: malformed, from an unknown sender, or contradicting committed entries');
    this.droppedReported = { at: now, count: 0 };
  }

  /** Long work, logged as it goes: a follower far behind (its leader sees it), a snapshot on its way in. */
  private progress<T extends StateMachineTransition, D>(raft: Raft<T, D>, now: number): void {
    const role = raft.role;
    const last = raft.log.lastIndex;
    if (role.kind !== 'leader') this.catchingUp = undefined;
    else {
      for (const [follower, pr] of role.progress) {
        const behind = last - pr.match;
        const c = this.catchingUp?.get(follower);
        if (!c) {
          if (behind < CATCHING_UP_ENTRIES && pr.state !== 'snapshot') continue;
          (this.catchingUp ??= new Map()).set(follower, { since: now, reportedAt: now, reportedMatch: pr.match });
          this.logger.info(
            { follower, matchIndex: pr.match, lastLogIndex: last, behind, state: pr.state },
            'follower catching up',
          );
        } else if (behind < CAUGHT_UP_ENTRIES && pr.state === 'replicate') {
          this.catchingUp!.delete(follower);
          this.logger.info({ follower, matchIndex: pr.match, tookMs: now - c.since }, 'follower caught up');
        } else if (now - c.reportedAt >= PROGRESS_INTERVAL_MS) {
          const entriesPerSecond = Math.round(((pr.match - c.reportedMatch) * 1000) / (now - c.reportedAt));
          const snapshot = pr.chunks && { sentBytes: pr.chunks.acked, totalBytes: pr.chunks.text.length };
          const fields = {
            follower,
            matchIndex: pr.match,
            lastLogIndex: last,
            behind,
            entriesPerSecond,
            state: pr.state,
            ...snapshot,
          };
          this.logger.info(fields, 'follower catching up');
          c.reportedAt = now;
          c.reportedMatch = pr.match;
        }
      }
      for (const follower of this.catchingUp?.keys() ?? [])
        if (!role.progress.has(follower)) this.catchingUp!.delete(follower);
      if (this.catchingUp?.size === 0) this.catchingUp = undefined;
    }
    const incoming = raft.incoming;
    if (incoming && now - this.receivingReportedAt >= PROGRESS_INTERVAL_MS) {
      this.receivingReportedAt = now;
      const fields = {
        from: raft.leaderId,
        index: incoming.index,
        receivedBytes: incoming.length,
        totalBytes: incoming.size,
      };
      this.logger.info(fields, 'receiving a snapshot');
    } else if (!incoming) this.receivingReportedAt = -Infinity;
  }
}
