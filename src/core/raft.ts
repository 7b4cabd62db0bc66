import type { Config } from './options.js';
import { RaftLog } from './log.js';
import { Progress } from './progress.js';
import {
  appendRequest, appendResponse, snapshotRequest, voteRequest, voteResponse,
  type AppendRequest, type AppendResponse, type Entry, type Message, type SnapshotRequest, type VoteRequest, type VoteResponse,
} from './message.js';
import type { StorageBatch } from './storage.js';
import type { ReplicaId, Snapshot, StateMachineTransition, TransitionId, TransitionState } from './types.js';

type Role =
  | { readonly kind: 'follower' }
  | { readonly kind: 'candidate'; readonly votes: Set<ReplicaId> }
  | { readonly kind: 'leader'; readonly progress: Map<ReplicaId, Progress> };

/** Counters worth watching; they only ever grow. */
export interface ReplicaMetrics {
  /** Messages received from the cluster, valid or not. */
  messagesIn: number;
  /** Messages handed to the cluster to send. */
  messagesOut: number;
  /** Messages dropped as malformed, from an unknown sender, or hostile (claiming to rewrite committed entries). */
  messagesDropped: number;
  /** Elections this replica started as a candidate. */
  electionsStarted: number;
  /** Entries appended to this replica's log (by proposing as leader or accepting as follower). */
  entriesAppended: number;
  /** Snapshots taken of this replica's state machine. */
  snapshotsCreated: number;
  /** Snapshots received from a leader (or seeded at start) and loaded. */
  snapshotsInstalled: number;
}

const COMMITTED: TransitionState = { status: 'committed' };
const QUEUED: TransitionState = { status: 'queued' };
const CONFLICT: TransitionState = { status: 'abandoned', reason: 'conflict-with-leader' };

/**
 * The Raft algorithm, free of I/O: `step` and `tick` change state and record what must follow
 * in the outbox (`messages`, `reports`, `leaderChanges`, the storage batch). The replica drains
 * it: persist first, then send, then report, then apply.
 */
export class Raft<T extends StateMachineTransition, D> {
  term = 0;
  votedFor: ReplicaId | undefined = undefined;
  leaderId: ReplicaId | undefined = undefined;
  commitIndex: number;
  lastApplied: number;
  role: Role = { kind: 'follower' };
  readonly log: RaftLog<T>;
  /** The latest snapshot, kept to send to followers that need compacted entries. */
  snapshot: Snapshot<D> | undefined;
  /** A snapshot from the leader that the state machine has yet to load. */
  snapshotToInstall: Snapshot<D> | undefined = undefined;
  readonly metrics: ReplicaMetrics = { messagesIn: 0, messagesOut: 0, messagesDropped: 0, electionsStarted: 0, entriesAppended: 0, snapshotsCreated: 0, snapshotsInstalled: 0 };

  // The outbox.
  messages: [ReplicaId, Message<T, D>][] = [];
  reports: [TransitionId, TransitionState][] = [];
  leaderChanges: (ReplicaId | undefined)[] = [];
  private hardStateDirty = false;
  /** The lowest log index changed since the last batch; entries from there on must be saved. */
  private dirtyFrom = Infinity;
  private truncated = false;
  private snapshotDirty = false;
  /** The last index known durable in this replica's storage: the leader counts itself only up to it. */
  private durableIndex: number;

  private now = 0;
  private electionDeadline = 0;
  private heartbeatDue = 0;
  private readonly quorum: number;

  constructor(private readonly config: Config<T, D>, term: number, votedFor: ReplicaId | undefined, snapshot: Snapshot<D> | undefined, entries: Entry<T>[]) {
    this.term = term;
    this.votedFor = votedFor;
    this.snapshot = snapshot;
    this.log = new RaftLog(snapshot?.lastIncludedIndex ?? 0, snapshot?.lastIncludedTerm ?? 0, entries);
    this.commitIndex = this.lastApplied = this.log.snapshotIndex;
    this.durableIndex = this.log.lastIndex;
    this.quorum = Math.floor((config.peerIds.length + 1) / 2) + 1;
  }

  /** Starts the clock: the first election timeout runs from `now`. */
  start(now: number): void {
    this.now = now;
    this.resetElectionTimer();
  }

  /** Fires the timers that are due at `now`. */
  tick(now: number): void {
    this.now = now;
    const role = this.role;
    if (role.kind === 'leader') {
      if (now < this.heartbeatDue) return;
      this.heartbeatDue = now + this.config.heartbeatTimeout;
      for (const [id, pr] of role.progress) this.heartbeat(id, pr);
    } else if (now >= this.electionDeadline) {
      this.campaign();
    }
  }

  /** Handles one well-formed message: settle the term first (§5.1), then act by type and role. */
  step(m: Message<T, D>, now: number): void {
    this.now = now;
    if (m.term > this.term) {
      this.becomeFollower(m.term, m.type === 'append' || m.type === 'snapshot' ? m.from : undefined);
    } else if (m.term < this.term) {
      // Tell a stale leader or candidate about the newer term so it steps down.
      if (m.type === 'append' || m.type === 'snapshot') this.send(m.from, appendResponse(this.config.id, this.term, false, 0));
      else if (m.type === 'vote') this.send(m.from, voteResponse(this.config.id, this.term, false));
      return;
    }
    switch (m.type) {
      case 'vote': return this.onVote(m);
      case 'voteResponse': return this.onVoteResponse(m);
      case 'append': return this.onAppend(m);
      case 'snapshot': return this.onSnapshot(m);
      case 'appendResponse': return this.onAppendResponse(m);
    }
  }

  /** Appends transitions polled on the leader (§5.3); they are reported `queued` once durable. */
  propose(transitions: T[]): void {
    for (const t of transitions) {
      this.appendEntry({ index: this.log.lastIndex + 1, term: this.term, transition: t });
      this.reports.push([t.id, QUEUED]);
    }
  }

  /** Sends what each follower can take now: one AppendEntries per follower per tick carries the whole batch. */
  flush(): void {
    if (this.role.kind !== 'leader') return;
    for (const [id, pr] of this.role.progress) this.replicate(id, pr, false);
  }

  /** Hands out the changes to make durable before anything in the outbox is sent. */
  takeBatch(): StorageBatch<T, D> | undefined {
    if (!this.hardStateDirty && this.dirtyFrom === Infinity && !this.snapshotDirty) return undefined;
    const batch: StorageBatch<T, D> = {};
    if (this.hardStateDirty) batch.hardState = { term: this.term, votedFor: this.votedFor };
    if (this.truncated) batch.truncateFrom = this.dirtyFrom;
    const from = Math.max(this.dirtyFrom, this.log.snapshotIndex + 1);
    if (from <= this.log.lastIndex) batch.append = this.log.slice(from, this.log.lastIndex);
    if (this.snapshotDirty) batch.snapshot = this.snapshot!;
    this.hardStateDirty = this.truncated = this.snapshotDirty = false;
    this.dirtyFrom = Infinity;
    return batch;
  }

  /** Called once the last batch is durable: the leader's own log now counts toward commitment. */
  persisted(): void {
    this.durableIndex = this.log.lastIndex;
    if (this.role.kind === 'leader') this.maybeCommit(this.role.progress);
  }

  /** Replaces the applied prefix of the log by the state machine's snapshot (§7). */
  compact(snapshot: Snapshot<D>): void {
    this.log.compact(snapshot.lastIncludedIndex, snapshot.lastIncludedTerm);
    this.snapshot = snapshot;
    this.snapshotDirty = true;
    this.metrics.snapshotsCreated++;
  }

  isLeader(): boolean { return this.role.kind === 'leader'; }

  private send(to: ReplicaId, m: Message<T, D>): void { this.messages.push([to, m]); }

  private setLeader(id: ReplicaId | undefined): void {
    if (id === this.leaderId) return;
    this.leaderId = id;
    this.leaderChanges.push(id);
  }

  private resetElectionTimer(): void {
    const [min, max] = this.config.electionTimeoutRange;
    this.electionDeadline = this.now + min + this.config.random() * (max - min);
  }

  private appendEntry(entry: Entry<T>): void {
    this.log.append(entry);
    this.dirtyFrom = Math.min(this.dirtyFrom, entry.index);
    this.metrics.entriesAppended++;
  }

  private truncateFrom(index: number): void {
    for (const e of this.log.truncateFrom(index)) if (!e.noop) this.reports.push([e.transition.id, CONFLICT]);
    this.dirtyFrom = Math.min(this.dirtyFrom, index);
    this.truncated = true;
  }

  private becomeFollower(term: number, leaderId: ReplicaId | undefined): void {
    if (term !== this.term) {
      this.term = term;
      this.votedFor = undefined;
      this.hardStateDirty = true;
    }
    // A deposed leader's election timer is stale: give the new leader a full timeout.
    if (this.role.kind === 'leader') this.resetElectionTimer();
    this.role = { kind: 'follower' };
    this.setLeader(leaderId);
  }

  /** §5.2: a follower whose election timeout passes votes for itself in a new term and asks the others. */
  private campaign(): void {
    this.term++;
    this.votedFor = this.config.id;
    this.hardStateDirty = true;
    this.role = { kind: 'candidate', votes: new Set([this.config.id]) };
    this.setLeader(undefined);
    this.resetElectionTimer();
    this.metrics.electionsStarted++;
    if (this.quorum === 1) return this.becomeLeader();
    const request = voteRequest(this.config.id, this.term, this.log.lastIndex, this.log.lastTerm);
    for (const id of this.config.peerIds) this.send(id, request);
  }

  private becomeLeader(): void {
    const progress = new Map(this.config.peerIds.map((id) => [id, new Progress(this.log.lastIndex + 1)]));
    this.role = { kind: 'leader', progress };
    this.setLeader(this.config.id);
    // The noop commits the previous terms' entries (§5.4.2 and §8) without waiting for a client.
    this.appendEntry({ index: this.log.lastIndex + 1, term: this.term, transition: this.config.noopTransition, noop: true });
    this.heartbeatDue = this.now + this.config.heartbeatTimeout;
    this.flush();
  }

  /** §5.2, §5.4.1: one vote per term, only for a candidate whose log is at least as up to date. */
  private onVote(m: VoteRequest): void {
    const granted = (this.votedFor === undefined || this.votedFor === m.from) && this.log.isUpToDate(m.lastLogIndex, m.lastLogTerm);
    if (granted) {
      this.votedFor = m.from;
      this.hardStateDirty = true;
      this.resetElectionTimer();
    }
    this.send(m.from, voteResponse(this.config.id, this.term, granted));
  }

  private onVoteResponse(m: VoteResponse): void {
    if (this.role.kind !== 'candidate' || !m.granted) return;
    this.role.votes.add(m.from);
    if (this.role.votes.size >= this.quorum) this.becomeLeader();
  }

  /** Figure 2, AppendEntries receiver: the consistency check, conflict truncation and commit. */
  private onAppend(m: AppendRequest<T>): void {
    if (this.role.kind === 'leader') return; // Election Safety: no other leader of this term exists.
    this.becomeFollower(m.term, m.from);
    this.resetElectionTimer();
    const id = this.config.id;
    let { prevLogIndex: prev, prevLogTerm: prevTerm, entries } = m;
    const snapshotIndex = this.log.snapshotIndex;
    if (prev < snapshotIndex) {
      // Everything up to our snapshot is committed, so it agrees with the leader's log.
      const skip = snapshotIndex - prev;
      if (skip >= entries.length) return this.send(m.from, appendResponse(id, this.term, true, snapshotIndex));
      entries = entries.slice(skip);
      prev = snapshotIndex;
      prevTerm = this.log.snapshotTerm;
    }
    if (this.log.term(prev) !== prevTerm) {
      const hintIndex = this.log.lastIndexWithTermAtMost(Math.min(prev, this.log.lastIndex), prevTerm);
      return this.send(m.from, appendResponse(id, this.term, false, m.prevLogIndex, hintIndex, this.log.term(hintIndex)!));
    }
    let i = 0;
    for (; i < entries.length; i++) {
      const e = entries[i]!;
      const have = this.log.term(e.index);
      if (have === undefined) break;
      if (have !== e.term) {
        // A leader never rewrites committed entries; a message that tries is hostile.
        if (e.index <= this.commitIndex) { this.metrics.messagesDropped++; return; }
        this.truncateFrom(e.index);
        break;
      }
    }
    for (; i < entries.length; i++) this.appendEntry(entries[i]!);
    const verified = prev + entries.length;
    this.commitIndex = Math.max(this.commitIndex, Math.min(m.leaderCommit, verified));
    this.send(m.from, appendResponse(id, this.term, true, verified));
  }

  /** §7 InstallSnapshot receiver: a snapshot never rolls back what is committed. */
  private onSnapshot(m: SnapshotRequest<D>): void {
    if (this.role.kind === 'leader') return;
    this.becomeFollower(m.term, m.from);
    this.resetElectionTimer();
    this.installSnapshot(m.snapshot);
    this.send(m.from, appendResponse(this.config.id, this.term, true, m.snapshot.lastIncludedIndex));
  }

  /** Starts from the state machine's own snapshot when storage holds none: it is saved, not loaded back. */
  seed(s: Snapshot<D>): void {
    // Terms never go back: our next term must exceed the seed's last one.
    if (s.lastIncludedTerm > this.term) this.becomeFollower(s.lastIncludedTerm, undefined);
    this.installSnapshot(s);
    this.snapshotToInstall = undefined;
    this.lastApplied = this.commitIndex;
  }

  private installSnapshot(s: Snapshot<D>): void {
    if (s.lastIncludedIndex > this.commitIndex) {
      // By Log Matching, if our entry at the snapshot's index differs, every entry after it conflicts.
      if (this.log.term(s.lastIncludedIndex) !== s.lastIncludedTerm && s.lastIncludedIndex < this.log.lastIndex) this.truncateFrom(s.lastIncludedIndex + 1);
      this.log.compact(s.lastIncludedIndex, s.lastIncludedTerm);
      this.snapshot = this.snapshotToInstall = s;
      this.snapshotDirty = true;
      this.commitIndex = s.lastIncludedIndex;
      this.metrics.snapshotsInstalled++;
    }
  }

  private onAppendResponse(m: AppendResponse): void {
    if (this.role.kind !== 'leader') return;
    const pr = this.role.progress.get(m.from);
    // An acknowledgement beyond our log is hostile: it would send progress past the end.
    if (!pr || m.index > this.log.lastIndex) { this.metrics.messagesDropped++; return; }
    if (m.success) {
      pr.paused = false;
      if (pr.acknowledge(m.index)) this.maybeCommit(this.role.progress);
    } else {
      // Skip every entry of the follower's conflicting terms at once (fast backtracking).
      const probeFrom = m.hintTerm > 0 ? this.log.lastIndexWithTermAtMost(m.hintIndex, m.hintTerm) : m.hintIndex;
      pr.reject(m.index, probeFrom);
    }
  }

  /** §5.3, §5.4.2: commit the highest index on a majority, but only by counting entries of this term. */
  private maybeCommit(progress: Map<ReplicaId, Progress>): void {
    const matches = [this.durableIndex];
    for (const pr of progress.values()) matches.push(pr.match);
    matches.sort((a, b) => b - a);
    const index = matches[this.quorum - 1]!;
    if (index <= this.commitIndex || this.log.term(index) !== this.term) return;
    for (let i = this.commitIndex + 1; i <= index; i++) {
      const e = this.log.entry(i)!;
      if (!e.noop) this.reports.push([e.transition.id, COMMITTED]);
    }
    this.commitIndex = index;
  }

  /** Sends a follower what it can take: a probe, a window of entries, or the snapshot. */
  private replicate(id: ReplicaId, pr: Progress, force: boolean): void {
    const { maxEntriesPerMessage, maxInflightMessages } = this.config;
    while (pr.state !== 'snapshot' && !(pr.state === 'probe' && pr.paused)) {
      const prev = pr.next - 1;
      const prevTerm = this.log.term(prev);
      if (prevTerm === undefined) {
        pr.state = 'snapshot';
        pr.paused = true;
        this.send(id, snapshotRequest(this.config.id, this.term, this.snapshot!));
        return;
      }
      const last = Math.min(this.log.lastIndex, prev + maxEntriesPerMessage);
      if ((last === prev && !force) || (pr.state === 'replicate' && pr.inflight.length >= maxInflightMessages)) return;
      this.send(id, appendRequest(this.config.id, this.term, prev, prevTerm, last > prev ? this.log.slice(pr.next, last) : [], this.commitIndex));
      force = false;
      if (pr.state === 'probe') pr.paused = true;
      else if (last > prev) {
        pr.inflight.push(last);
        pr.next = last + 1;
      }
    }
  }

  /** An idle leader's only traffic: one AppendEntries per follower per heartbeat timeout (§5.2). */
  private heartbeat(id: ReplicaId, pr: Progress): void {
    const matchTerm = this.log.term(pr.match);
    if (pr.state === 'replicate' && ((pr.inflight.length > 0 && pr.match === pr.matchAtHeartbeat) || matchTerm === undefined)) pr.becomeProbe();
    pr.matchAtHeartbeat = pr.match;
    if (pr.state === 'replicate') {
      // Anchored at `match`, which the follower holds, so a heartbeat never disturbs the stream in flight.
      this.send(id, appendRequest(this.config.id, this.term, pr.match, matchTerm!, [], this.commitIndex));
      return;
    }
    if (pr.state === 'snapshot') pr.state = 'probe';
    pr.paused = false;
    this.replicate(id, pr, true);
  }
}
