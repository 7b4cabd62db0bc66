import type { RaftConfig } from './config.js';
import {
  CatchUpTimeoutError, MembershipChangeInProgressError, NotLeaderError, NotVoterError, TransferInProgressError,
  TransferTimeoutError,
} from './errors.js';
import { entrySize, RaftLog } from './log.js';
import { Membership } from './membership.js';
import { Progress } from './progress.js';
import {
  appendRequest, appendResponse, snapshotRequest, snapshotResponse, timeoutNow, voteRequest, voteResponse,
  type AppendRequest, type AppendResponse, type CoreSnapshot, type Entry, type Message, type SnapshotRequest,
  type SnapshotResponse, type VoteRequest, type VoteResponse,
} from './message.js';
import type { PersistentState, StorageBatch } from './storage.js';
import { isValidMessage } from './validate.js';
import { MAX_TERM_OR_INDEX } from './types.js';
import type { ReplicaId, Snapshot, StateMachineTransition, TransitionId, TransitionState } from './types.js';

type Role =
  | { readonly kind: 'follower' }
  | { readonly kind: 'candidate'; readonly votes: Set<ReplicaId>; readonly pre: boolean }
  | { readonly kind: 'leader'; readonly progress: Map<ReplicaId, Progress> };

/** A whole snapshot from the leader `from`, for the state machine to load before the algorithm takes it. */
export interface SnapshotToInstall<D> { readonly from: ReplicaId; readonly snapshot: CoreSnapshot<D> }

/**
 * The hand-over from the algorithm to the driver (after etcd's `Ready`), taken by
 * {@link Raft.ready}: save `batch` durably, call {@link Raft.advance}, then send `messages`,
 * announce leader and membership changes, report, and apply `committed`. The driver decides
 * nothing of Raft: it does what the value says, in that order.
 */
export interface Ready<T, D> {
  /** The changes to make durable before anything else here is acted on. */
  batch: StorageBatch<T, D> | undefined;
  /** Messages to send, once `batch` is durable. */
  readonly messages: [ReplicaId, Message<T, D>][];
  /** Transition states to report, in order, laid flat as id, state, id, state: no pair allocated per entry. */
  readonly reports: (TransitionId | TransitionState)[];
  /** Every change of the known leader, in order. */
  readonly leaderChanges: (ReplicaId | undefined)[];
  /** The voting members, if they changed. */
  members: ReplicaId[] | undefined;
  /** Committed entries not yet applied, in index order: apply each and tell {@link Raft.applied}. */
  committed: Entry<T>[];
}

const newReady = <T, D>(): Ready<T, D> =>
  ({ batch: undefined, messages: [], reports: [], leaderChanges: [], members: undefined, committed: [] });

/** A caller waiting for a request the core settles in a later tick. */
export interface Pending { resolve(): void; reject(error: Error): void }
interface Read extends Pending { readonly round: number; index: number }
/** A membership change; `index` is its configuration entry's once appended, 0 while a new member catches up. */
export interface Change extends Pending { readonly id: ReplicaId; add: boolean; index: number; deadline: number }
export interface Transfer extends Pending { readonly to: ReplicaId; readonly deadline: number; sent: boolean }

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
  /** Snapshots from a leader that `setSnapshot` refused (threw): dropped, neither saved nor acknowledged. */
  snapshotsRefused: number;
}

/** Every counter at zero. */
export const newMetrics = (): ReplicaMetrics => ({
  messagesIn: 0, messagesOut: 0, messagesDropped: 0, electionsStarted: 0, entriesAppended: 0, snapshotsCreated: 0,
  snapshotsInstalled: 0, snapshotsRefused: 0,
});

const COMMITTED: TransitionState = { status: 'committed' };
const QUEUED: TransitionState = { status: 'queued' };
const CONFLICT: TransitionState = { status: 'abandoned', reason: 'conflict-with-leader' };

/**
 * The Raft algorithm, free of I/O: `receive`, `tick` and the requests change state and record
 * what must follow; {@link Raft.ready} hands it to the driver as one {@link Ready}.
 */
export class Raft<T extends StateMachineTransition, D> {
  term = 0;
  votedFor: ReplicaId | undefined = undefined;
  leaderId: ReplicaId | undefined = undefined;
  commitIndex: number;
  lastApplied: number;
  role: Role = { kind: 'follower' };
  readonly log: RaftLog<T>;
  readonly membership: Membership;
  /** The latest snapshot, kept to send to followers that need compacted entries. */
  snapshot: CoreSnapshot<D> | undefined;
  /** A leadership transfer under way: the leader accepts no transitions meanwhile. Read-only outside. */
  transfer: Transfer | undefined = undefined;
  readonly metrics = newMetrics();

  /** What the next Ready hands over, filled in as the algorithm goes; `batch` is taken last. */
  private out: Ready<T, D> = newReady();
  private hardStateDirty = false;
  /** The lowest log index changed since the last batch; entries from there on must be saved. */
  private dirtyFrom = Infinity;
  private truncated = false;
  private snapshotDirty = false;
  /** The last index known durable in this replica's storage: the leader counts itself only up to it. */
  private durableIndex: number;
  /**
   * The latest AppendEntries made, newest first, each sent again as it is to the next follower
   * that needs the same. Several, not one: a tick sends each follower its whole run of messages
   * before the next follower's, and a transport encodes a shared message once.
   */
  private readonly appends: AppendRequest<T>[] = [];

  private now = 0;
  private electionDeadline = 0;
  private heartbeatDue = 0;
  private quorumCheckDue = 0;
  private leaderContact = -Infinity;
  /** The latest read round: reads wait for a majority to answer an AppendEntries of their round. */
  private round = 0;
  private reads: Read[] = [];
  /** The membership change under way, on the leader. Read-only outside. */
  change: Change | undefined = undefined;
  /** Polled transitions beyond one tick's byte budget: they are appended in the next ticks. */
  private backlog: T[] = [];
  /** The chunks of a snapshot being received: its text so far, for one leader's term. Read-only outside. */
  incoming: { term: number; index: number; size: number; chunks: string[]; length: number } | undefined;

  /** Starts from what storage holds (checked by `checkPersistentState`). */
  constructor(private readonly config: RaftConfig<T>, stored: PersistentState<T, D>) {
    const { snapshot, entries } = stored;
    ({ term: this.term, votedFor: this.votedFor, snapshot: this.snapshot } = stored);
    this.log = new RaftLog(snapshot?.lastIncludedIndex ?? 0, snapshot?.lastIncludedTerm ?? 0, entries);
    this.commitIndex = this.lastApplied = this.log.snapshotIndex;
    this.durableIndex = this.log.lastIndex;
    const members = config.join ? [...config.peerIds] : [config.id, ...config.peerIds];
    this.membership = new Membership(snapshot?.members ?? members);
    for (const e of entries) if (e.config) this.membership.appended(e.index, e.config);
    // A snapshot's configuration may predate members the options name: they are senders all the same.
    for (const id of config.peerIds) this.membership.known.add(id);
  }

  private get voters(): ReplicaId[] { return this.membership.voters; }
  private get quorum(): number { return Math.floor(this.voters.length / 2) + 1; }
  private get maxElectionTimeout(): number { return this.config.electionTimeoutRange[1]; }

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
      if (this.config.checkQuorum && now >= this.quorumCheckDue) {
        // Check-quorum: a leader cut off from a majority stops claiming to lead.
        this.quorumCheckDue = now + this.maxElectionTimeout;
        const heard = this.count(role.progress, (pr) => pr.active);
        for (const pr of role.progress.values()) pr.active = false;
        if (heard < this.quorum) return this.becomeFollower(this.term, undefined);
      }
      if (now < this.heartbeatDue) return;
      this.heartbeatDue = now + this.config.heartbeatTimeout;
      for (const [id, pr] of role.progress) this.heartbeat(id, pr);
    } else if (now >= this.electionDeadline) {
      this.campaign(this.config.preVote ? 'pre-vote' : 'vote');
    }
  }

  /**
   * Takes one message from the cluster: a malformed one, or one from an unknown sender, is
   * dropped and counted. Returns a complete snapshot from the leader, which the state machine
   * must load (then {@link Raft.installed}, or {@link Raft.refused}) before the next message.
   */
  receive(m: unknown, now: number): SnapshotToInstall<D> | void {
    this.metrics.messagesIn++;
    if (isValidMessage<T, D>(m, this.membership.known) && m.from !== this.config.id) return this.step(m, now);
    this.metrics.messagesDropped++;
  }

  /** Handles one well-formed message: settle the term first (§5.1), then act by type and role. */
  private step(m: Message<T, D>, now: number): SnapshotToInstall<D> | void {
    this.now = now;
    if (m.type === 'vote' && m.pre) return this.onPreVote(m);
    if (m.term > this.term) {
      // Leader stickiness (dissertation §4.2.3): while a leader is heard from, no vote can depose it.
      if (m.type === 'vote' && !m.force && this.config.checkQuorum && this.heardFromLeader()) return;
      // A granted pre-vote carries the term the candidate asked about, not one to adopt.
      const leader = m.type === 'append' || m.type === 'snapshot' ? m.from : undefined;
      if (!(m.type === 'voteResponse' && m.pre && m.granted)) this.becomeFollower(m.term, leader);
    } else if (m.term < this.term) {
      // Tell a stale leader or candidate about the newer term so it steps down.
      const [from, term] = [this.config.id, this.term];
      const stale = m.type === 'append' || m.type === 'snapshot';
      if (stale) this.send(m.from, appendResponse({ from, term, success: false, index: 0 }));
      else if (m.type === 'vote') this.send(m.from, voteResponse({ from, term, granted: false }));
      return;
    }
    switch (m.type) {
      case 'vote': return this.onVote(m);
      case 'voteResponse': return this.onVoteResponse(m);
      case 'append': return this.onAppend(m);
      case 'snapshot': return this.onSnapshot(m);
      case 'appendResponse': return this.onAppendResponse(m);
      case 'snapshotResponse': return this.onSnapshotResponse(m);
      case 'timeoutNow': if (this.role.kind === 'follower' && m.from === this.leaderId) this.campaign('transfer');
    }
  }

  /**
   * Appends transitions polled on the leader (§5.3), reported `queued` once durable: about
   * `maxBytesPerMessage` of them per tick, so one tick's save stays small; the rest wait for
   * the next ticks. A replica that does not lead, or is handing leadership over, abandons them.
   */
  propose(transitions: T[]): void {
    const queue = this.backlog.length > 0 ? this.backlog.concat(transitions) : transitions;
    const leading = this.role.kind === 'leader' && !this.transfer;
    let i = 0;
    for (let bytes = 0; leading && i < queue.length && bytes < this.config.maxBytesPerMessage; i++) {
      const t = queue[i]!;
      const entry: Entry<T> = { index: this.log.lastIndex + 1, term: this.term, transition: t, kind: 'transition' };
      bytes += entrySize(entry);
      this.appendEntry(entry);
      this.out.reports.push(t.id, QUEUED);
    }
    this.backlog = leading ? queue.slice(i) : [];
    if (!leading) for (const t of queue) this.out.reports.push(t.id, { status: 'abandoned', reason: 'not-leader' });
  }

  /** A linearizable read (dissertation §6.4): settled by {@link Raft.settleReads} once safe. */
  read(p: Pending): void {
    if (this.role.kind !== 'leader') return p.reject(new NotLeaderError(this.leaderId));
    const [round, index] = [this.round + 1, this.committedInTerm() ? this.commitIndex : -1];
    this.reads.push({ resolve: p.resolve, reject: p.reject, round, index }); // a spread would cost more than the read
  }

  /**
   * A single-server membership change (dissertation §4.1); a new member first catches up as a
   * non-voter, for at most `catchUpTimeout` ms.
   */
  changeMembership(change: 'add' | 'remove', id: ReplicaId, p: Pending): void {
    const role = this.role;
    const add = change === 'add';
    if (role.kind !== 'leader') return p.reject(new NotLeaderError(this.leaderId));
    if (this.voters.includes(id) === add) return p.resolve();
    if (this.change || this.membership.lastIndex > this.commitIndex) {
      return p.reject(new MembershipChangeInProgressError('a membership change is already in progress'));
    }
    if (add) {
      this.membership.known.add(id);
      role.progress.set(id, new Progress(this.log.lastIndex + 1));
    }
    this.change = { ...p, id, add, index: 0, deadline: this.now + this.config.catchUpTimeout };
  }

  /** Hands leadership to `to` (dissertation §3.10): no new transitions, bring `to` up to date, then TimeoutNow. */
  transferLeadership(to: ReplicaId, p: Pending): void {
    if (this.role.kind !== 'leader') return p.reject(new NotLeaderError(this.leaderId));
    if (to === this.config.id) return p.resolve();
    if (!this.voters.includes(to)) return p.reject(new NotVoterError(`replica ${to} is not a voting member`));
    if (this.transfer) return p.reject(new TransferInProgressError('a leadership transfer is already in progress'));
    this.transfer = { ...p, to, deadline: this.now + this.maxElectionTimeout, sent: false };
  }

  /**
   * After the requests of a tick: settle a transfer, send its TimeoutNow, advance a membership
   * change, start a read round, and send each follower what it can take.
   */
  private proceed(): void {
    this.settleTransfer();
    const role = this.role;
    if (role.kind !== 'leader') return;
    this.sendTimeoutNow(role.progress);
    this.advanceMembershipChange(role.progress);
    this.startReadRound(role.progress);
    for (const [id, pr] of role.progress) this.replicate(id, pr, false);
  }

  /** A transfer ends when its target leads, or fails after one maximum election timeout. */
  private settleTransfer(): void {
    const t = this.transfer;
    if (!t || (this.leaderId !== t.to && this.now < t.deadline)) return;
    this.transfer = undefined;
    if (this.leaderId === t.to) t.resolve();
    else t.reject(new TransferTimeoutError(`replica ${t.to} did not take over within ${this.maxElectionTimeout} ms`));
  }

  /** The transfer's target holds the whole log: it may campaign at once (dissertation §3.10). */
  private sendTimeoutNow(progress: Map<ReplicaId, Progress>): void {
    const t = this.transfer;
    if (!t || t.sent || progress.get(t.to)?.match !== this.log.lastIndex) return;
    t.sent = true;
    this.send(t.to, timeoutNow({ from: this.config.id, term: this.term }));
  }

  /**
   * Appends the new configuration once the leader has committed an entry of its term and a new
   * member has caught up; gives up on a member that does not catch up within `catchUpTimeout`.
   */
  private advanceMembershipChange(progress: Map<ReplicaId, Progress>): void {
    const c = this.change;
    if (!c || c.index !== 0) return;
    if (this.now >= c.deadline) {
      this.change = undefined;
      if (c.add) progress.delete(c.id);
      c.reject(new CatchUpTimeoutError(`replica ${c.id} did not catch up within ${this.config.catchUpTimeout} ms`));
    } else if (this.committedInTerm() && (!c.add || progress.get(c.id)!.match >= this.commitIndex)) {
      c.index = this.log.lastIndex + 1;
      const config = c.add ? [...this.voters, c.id].sort((a, b) => a - b) : this.voters.filter((v) => v !== c.id);
      this.appendEntry({ ...this.noop(c.index), kind: 'config', config });
    }
  }

  /** One heartbeat round confirms leadership for every read that arrived since the last one. */
  private startReadRound(progress: Map<ReplicaId, Progress>): void {
    if ((this.reads.at(-1)?.round ?? 0) <= this.round) return;
    this.round++;
    for (const [id, pr] of progress) this.sendHeartbeat(id, pr.match);
  }

  /** Resolves the reads whose round a majority answered, once their index is applied. */
  settleReads(): void {
    const role = this.role;
    if (role.kind !== 'leader' || this.reads.length === 0) return;
    const index = this.committedInTerm() ? this.commitIndex : -1;
    this.reads = this.reads.filter((r) => {
      if (r.index < 0) r.index = index;
      const confirmed = this.count(role.progress, (pr) => pr.round >= r.round) >= this.quorum;
      const ready = r.index >= 0 && r.index <= this.lastApplied && confirmed;
      if (ready) r.resolve();
      return !ready;
    });
  }

  /** Rejects every request still waiting: the replica stopped or failed, and settles nothing more. */
  abort(error: Error): void {
    for (const p of [...this.reads, this.change, this.transfer]) p?.reject(error);
    this.reads = [];
    this.change = this.transfer = undefined;
  }

  /**
   * Moves the tick's requests on and hands over everything that must follow (see {@link Ready}):
   * the changes to make durable, and what to do once they are.
   */
  ready(): Ready<T, D> {
    this.proceed();
    this.out.batch = this.takeBatch();
    return this.out;
  }

  /**
   * The batch of `ready` is durable: the leader's own log now counts toward commitment, and what
   * that settles joins `ready` before the driver acts on it, with the entries now to apply.
   */
  advance(ready: Ready<T, D>): void {
    this.durableIndex = this.log.lastIndex;
    if (this.role.kind === 'leader') this.maybeCommit(this.role.progress);
    if (ready.members) ready.members = [...this.voters];
    ready.committed = this.lastApplied < this.commitIndex ? this.log.slice(this.lastApplied + 1, this.commitIndex) : [];
    this.metrics.messagesOut += ready.messages.length;
    this.out = newReady();
  }

  /** The state machine has applied the entry at `index` (or a configuration entry was passed over). */
  applied(index: number): void { this.lastApplied = index; }

  /** Where the state machine should take a snapshot: once `snapshotDelta` entries were applied since the last one. */
  snapshotDue(): { index: number; term: number } | undefined {
    const delta = this.config.snapshotDelta;
    if (delta === 0 || this.lastApplied - this.log.snapshotIndex < delta) return undefined;
    return { index: this.lastApplied, term: this.log.term(this.lastApplied)! };
  }

  /** The changes to make durable before anything the algorithm asked for is done. */
  private takeBatch(): StorageBatch<T, D> | undefined {
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

  /**
   * Replaces the applied prefix of the log by the state machine's snapshot (§7); the configuration
   * travels with it.
   */
  compact(snapshot: Snapshot<D>): void {
    const index = snapshot.lastIncludedIndex;
    this.snapshot = { ...snapshot, members: this.membership.at(index) };
    this.log.compact(index, snapshot.lastIncludedTerm);
    this.membership.compacted(index, undefined);
    this.snapshotDirty = true;
    this.metrics.snapshotsCreated++;
  }

  isLeader(): boolean { return this.role.kind === 'leader'; }

  private send(to: ReplicaId, m: Message<T, D>): void { this.out.messages.push([to, m]); }

  private committedInTerm(): boolean { return this.log.term(this.commitIndex) === this.term; }

  /** A noop entry of this term at `index`, the base of a leader's first entry and of configuration entries. */
  private noop(index: number): { index: number; term: number; transition: T } {
    return { index, term: this.term, transition: this.config.noopTransition };
  }

  /** §5.2, §5.4.1: only a voting member whose log is at least as up to date as ours gets a vote. */
  private mayVoteFor(m: VoteRequest): boolean {
    return this.voters.includes(m.from) && this.log.isUpToDate(m.lastLogIndex, m.lastLogTerm);
  }

  private heardFromLeader(): boolean {
    const recently = this.now < this.leaderContact + this.config.electionTimeoutRange[0];
    return this.role.kind === 'leader' || (this.leaderId !== undefined && recently);
  }

  /** How many voters (this leader included, if it is one) satisfy `ok`. */
  private count(progress: Map<ReplicaId, Progress>, ok: (pr: Progress) => boolean): number {
    // A loop, not a filter: this runs on every acknowledgement and should allocate nothing.
    let n = 0;
    for (const id of this.voters) if (id === this.config.id || (progress.has(id) && ok(progress.get(id)!))) n++;
    return n;
  }

  private setLeader(id: ReplicaId | undefined): void {
    if (id === this.leaderId) return;
    this.leaderId = id;
    this.out.leaderChanges.push(id);
  }

  private resetElectionTimer(): void {
    const [min, max] = this.config.electionTimeoutRange;
    this.electionDeadline = this.now + min + this.config.random() * (max - min);
  }

  private appendEntry(entry: Entry<T>): void {
    this.log.append(entry);
    this.dirtyFrom = Math.min(this.dirtyFrom, entry.index);
    this.metrics.entriesAppended++;
    if (entry.config) {
      this.membership.appended(entry.index, entry.config);
      this.onMembershipChange();
    }
  }

  private truncateFrom(index: number): void {
    for (const e of this.log.truncateFrom(index)) {
      if (e.kind === 'transition') this.out.reports.push(e.transition.id, CONFLICT);
    }
    this.dirtyFrom = Math.min(this.dirtyFrom, index);
    this.truncated = true;
    if (this.membership.truncated(index)) this.onMembershipChange();
  }

  /** A configuration takes effect when appended: the leader replicates to exactly the new members. */
  private onMembershipChange(): void {
    this.out.members = this.voters; // the latest voters are read once the Ready is complete
    const role = this.role;
    if (role.kind !== 'leader') return;
    for (const id of this.voters) {
      if (id !== this.config.id && !role.progress.has(id)) role.progress.set(id, new Progress(this.log.lastIndex + 1));
    }
    // A member being removed keeps receiving entries until its removal commits, so it learns of it.
    for (const id of role.progress.keys()) {
      if (!this.voters.includes(id) && id !== this.change?.id) role.progress.delete(id);
    }
  }

  private becomeFollower(term: number, leaderId: ReplicaId | undefined): void {
    if (term !== this.term) {
      this.term = term;
      this.votedFor = undefined;
      this.hardStateDirty = true;
    }
    if (this.role.kind === 'leader') {
      // A deposed leader's election timer is stale: give the new leader a full timeout.
      this.resetElectionTimer();
      const gone = new NotLeaderError(leaderId);
      for (const p of [...this.reads, this.change]) p?.reject(gone);
      this.reads = [];
      this.change = undefined;
    }
    this.role = { kind: 'follower' };
    this.setLeader(leaderId);
  }

  /**
   * §5.2: a follower whose election timeout passes asks for votes in a new term; with pre-vote it
   * first asks, without raising its term, whether it could win. Only a voting member campaigns.
   * A leadership transfer's target campaigns at once, and voters grant it despite a live leader.
   */
  private campaign(how: 'pre-vote' | 'vote' | 'transfer'): void {
    const pre = how === 'pre-vote';
    this.resetElectionTimer();
    const id = this.config.id;
    // At the last term there is no next one to campaign in (see MAX_TERM_OR_INDEX).
    if (!this.voters.includes(id) || this.term >= MAX_TERM_OR_INDEX) return;
    if (!pre) {
      this.term++;
      this.votedFor = id;
      this.hardStateDirty = true;
      this.metrics.electionsStarted++;
    }
    this.role = { kind: 'candidate', votes: new Set([id]), pre };
    this.setLeader(undefined);
    if (this.quorum === 1) return pre ? this.campaign('vote') : this.becomeLeader();
    const { lastIndex: lastLogIndex, lastTerm: lastLogTerm } = this.log;
    const term = this.term + (pre ? 1 : 0);
    const request = voteRequest({ from: id, term, lastLogIndex, lastLogTerm, pre, force: how === 'transfer' });
    for (const v of this.voters) if (v !== id) this.send(v, request);
  }

  private becomeLeader(): void {
    const followers = this.voters.filter((v) => v !== this.config.id);
    const progress = new Map(followers.map((id) => [id, new Progress(this.log.lastIndex + 1)]));
    this.role = { kind: 'leader', progress };
    this.setLeader(this.config.id);
    // The noop commits the previous terms' entries (§5.4.2 and §8) without waiting for a client.
    this.appendEntry({ ...this.noop(this.log.lastIndex + 1), kind: 'noop' });
    this.heartbeatDue = this.now + this.config.heartbeatTimeout;
    this.quorumCheckDue = this.now + this.maxElectionTimeout;
    this.proceed();
  }

  /** A pre-vote changes nothing here; it is refused while a leader is heard from. */
  private onPreVote(m: VoteRequest): void {
    const granted = m.term > this.term && !this.heardFromLeader() && this.mayVoteFor(m);
    this.send(m.from, voteResponse({ from: this.config.id, term: granted ? m.term : this.term, granted, pre: true }));
  }

  /** §5.2, §5.4.1: one vote per term, only for a member whose log is at least as up to date. */
  private onVote(m: VoteRequest): void {
    const granted = (this.votedFor === undefined || this.votedFor === m.from) && this.mayVoteFor(m);
    if (granted) {
      this.votedFor = m.from;
      this.hardStateDirty = true;
      this.resetElectionTimer();
    }
    this.send(m.from, voteResponse({ from: this.config.id, term: this.term, granted }));
  }

  private onVoteResponse(m: VoteResponse): void {
    const role = this.role;
    if (role.kind !== 'candidate' || role.pre !== m.pre || !m.granted || !this.voters.includes(m.from)) return;
    if (m.term !== this.term + (m.pre ? 1 : 0)) return;
    role.votes.add(m.from);
    if (role.votes.size >= this.quorum) return role.pre ? this.campaign('vote') : this.becomeLeader();
  }

  /** Figure 2, AppendEntries receiver: the consistency check, conflict truncation and commit. */
  private onAppend(m: AppendRequest<T>): void {
    if (this.role.kind === 'leader') return; // Election Safety: no other leader of this term exists.
    this.becomeFollower(m.term, m.from);
    this.resetElectionTimer();
    this.leaderContact = this.now;
    // Plain literals, not spreads: this runs once per AppendEntries, and V8 copies a spread slowly.
    const [from, term, round] = [this.config.id, this.term, m.round];
    let { prevLogIndex: prev, prevLogTerm: prevTerm, entries } = m;
    const snapshotIndex = this.log.snapshotIndex;
    if (prev < snapshotIndex) {
      // Everything up to our snapshot is committed, so it agrees with the leader's log.
      entries = entries.slice(Math.min(snapshotIndex - prev, entries.length));
      [prev, prevTerm] = [snapshotIndex, this.log.snapshotTerm];
    }
    if (this.log.term(prev) !== prevTerm) {
      const hintIndex = this.log.lastIndexWithTermAtMost(Math.min(prev, this.log.lastIndex), prevTerm);
      const [hintTerm, index] = [this.log.term(hintIndex)!, m.prevLogIndex];
      return this.send(m.from, appendResponse({ from, term, success: false, round, index, hintIndex, hintTerm }));
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
    this.send(m.from, appendResponse({ from, term, success: true, round, index: verified }));
  }

  /**
   * §7 InstallSnapshot receiver (Figure 13, in chunks): a snapshot never rolls back what is
   * committed. Chunks of one snapshot from one leader's term accumulate in order; the follower
   * answers with how much it holds, and installs once it holds the whole text.
   */
  private onSnapshot(m: SnapshotRequest): SnapshotToInstall<D> | void {
    if (this.role.kind === 'leader') return;
    this.becomeFollower(m.term, m.from);
    this.resetElectionTimer();
    this.leaderContact = this.now;
    const index = m.snapshot.lastIncludedIndex;
    if (index > this.commitIndex) {
      const had = this.incoming;
      const b = had?.term === m.term && had.index === index && had.size === m.size ? had
        : m.offset === 0 ? (this.incoming = { term: m.term, index, size: m.size, chunks: [], length: 0 }) : undefined;
      if (b && m.offset === b.length) { b.chunks.push(m.chunk); b.length += m.chunk.length; }
      const held = b?.length ?? 0;
      const [from, term] = [this.config.id, this.term];
      if (held !== m.size || !b) return this.send(m.from, snapshotResponse({ from, term, index, offset: held }));
      this.incoming = undefined;
      // A leader's own serialization always parses: text that does not is hostile.
      let data: D;
      try { data = JSON.parse(b.chunks.join('')) as D; } catch { this.metrics.messagesDropped++; return; }
      // The state machine loads it first: one it refuses is never saved nor acknowledged.
      return { from: m.from, snapshot: { ...m.snapshot, data } };
    }
    this.send(m.from, appendResponse({ from: this.config.id, term: this.term, success: true, index }));
  }

  /** The state machine has loaded the leader's snapshot: the log starts after it; the leader hears so once durable. */
  installed(m: SnapshotToInstall<D>): void {
    this.installSnapshot(m.snapshot);
    this.lastApplied = Math.max(this.lastApplied, this.log.snapshotIndex);
    const index = m.snapshot.lastIncludedIndex;
    this.send(m.from, appendResponse({ from: this.config.id, term: this.term, success: true, index }));
  }

  /** The state machine refused the leader's snapshot (its `setSnapshot` threw): not saved, not acknowledged. */
  refused(): void {
    this.metrics.snapshotsRefused++;
  }

  /** Starts from the state machine's own snapshot when storage holds none: it is saved, not loaded back. */
  seed(s: Snapshot<D>): void {
    // Terms never go back: our next term must exceed the seed's last one.
    if (s.lastIncludedTerm > this.term) this.becomeFollower(s.lastIncludedTerm, undefined);
    this.installSnapshot(s);
    this.lastApplied = this.commitIndex;
  }

  private installSnapshot(s: CoreSnapshot<D>): void {
    if (s.lastIncludedIndex <= this.commitIndex) return;
    // By Log Matching, if our entry at the snapshot's index differs, every entry after it conflicts.
    const { lastIncludedIndex: index, lastIncludedTerm: term } = s;
    if (this.log.term(index) !== term && index < this.log.lastIndex) this.truncateFrom(index + 1);
    this.log.compact(s.lastIncludedIndex, s.lastIncludedTerm);
    this.membership.compacted(s.lastIncludedIndex, s.members);
    this.onMembershipChange();
    // Saved with the members it leaves in effect: without them, a restart would let the options decide.
    this.snapshot = { ...s, members: this.membership.at(s.lastIncludedIndex) };
    this.snapshotDirty = true;
    this.commitIndex = s.lastIncludedIndex;
    this.metrics.snapshotsInstalled++;
  }

  private onAppendResponse(m: AppendResponse): void {
    if (this.role.kind !== 'leader') return;
    const pr = this.role.progress.get(m.from);
    // An acknowledgement beyond our log is hostile: it would send progress past the end.
    if (!pr || m.index > this.log.lastIndex) { this.metrics.messagesDropped++; return; }
    pr.active = true;
    pr.round = Math.max(pr.round, m.round);
    if (m.success) {
      pr.paused = false;
      if (pr.acknowledge(m.index)) this.maybeCommit(this.role.progress);
    } else {
      // Skip every entry of the follower's conflicting terms at once (fast backtracking).
      const probeFrom = m.hintTerm > 0 ? this.log.lastIndexWithTermAtMost(m.hintIndex, m.hintTerm) : m.hintIndex;
      pr.reject(m.index, probeFrom);
    }
  }

  /** A follower holds part of the snapshot: the stream goes on from there (after a drop, from what it holds). */
  private onSnapshotResponse(m: SnapshotResponse): void {
    const pr = this.role.kind === 'leader' ? this.role.progress.get(m.from) : undefined;
    const c = pr?.chunks;
    if (!pr || !c || c.meta.lastIncludedIndex !== m.index) return;
    pr.active = true;
    pr.paused = false;
    c.acked = Math.min(m.offset, c.text.length);
    c.sent = Math.max(c.sent, c.acked);
  }

  /** §5.3, §5.4.2: commit the highest index on a majority of voters, but only by counting entries of this term. */
  private maybeCommit(progress: Map<ReplicaId, Progress>): void {
    const match = (id: ReplicaId): number => (id === this.config.id ? this.durableIndex : progress.get(id)?.match ?? 0);
    const matches = this.voters.map(match);
    // The highest index a quorum holds, counted rather than sorted: V8's sort (or a filter) allocates on every call.
    const holding = (m: number): number => matches.reduce((n, x) => (x >= m ? n + 1 : n), 0);
    let index = 0;
    for (const m of matches) if (m > index && holding(m) >= this.quorum) index = m;
    if (index <= this.commitIndex || this.log.term(index) !== this.term) return;
    for (let i = this.commitIndex + 1; i <= index; i++) {
      const e = this.log.entry(i)!;
      if (e.kind === 'transition') this.out.reports.push(e.transition.id, COMMITTED);
    }
    this.commitIndex = index;
    const c = this.change;
    if (c && c.index > 0 && c.index <= index) {
      this.change = undefined;
      this.onMembershipChange();
      c.resolve();
      // A leader that removed itself steps down once the change is committed (dissertation §4.2.2).
      if (!this.voters.includes(this.config.id)) this.becomeFollower(this.term, undefined);
    }
  }

  /**
   * Sends a follower what it can take: a probe, a window of entries, or the snapshot in chunks.
   * A message carries at least one entry, then as many as fit in `maxBytesPerMessage`; the
   * window is bounded by messages and by estimated bytes. A forced (heartbeat) message with
   * `limit` 0 carries nothing: it only asks where the follower stands.
   */
  private replicate(id: ReplicaId, pr: Progress, force: boolean, limit = this.config.maxEntriesPerMessage): void {
    const { maxBytesPerMessage, maxInflightMessages, maxInflightBytes } = this.config;
    while (!pr.paused) {
      const c = pr.chunks;
      if (c) {
        const size = c.text.length;
        if (!force && (c.sent >= size || c.sent - c.acked >= maxInflightBytes)) return;
        // A chunk never ends inside a surrogate pair, which no UTF-8 transport could encode.
        let end = Math.min(size, c.sent + (limit && maxBytesPerMessage));
        if (end < size && (c.text.charCodeAt(end - 1) & 0xfc00) === 0xd800) end--;
        const chunk = c.text.slice(c.sent, end);
        const [from, term] = [this.config.id, this.term];
        this.send(id, snapshotRequest({ from, term, snapshot: c.meta, offset: c.sent, size, chunk }));
        c.sent = end;
        pr.paused = force; // a heartbeat's chunk probes: nothing more until it is answered
        force = false;
        continue;
      }
      const prev = pr.next - 1;
      const prevTerm = this.log.term(prev);
      if (prevTerm === undefined) {
        // The snapshot's text is made once and shared by every follower receiving it.
        const { data, ...meta } = this.snapshot!;
        const others = this.role.kind === 'leader' ? [...this.role.progress.values()] : [];
        const text = others.find((p) => p.chunks?.meta.lastIncludedIndex === meta.lastIncludedIndex)?.chunks!.text;
        pr.state = 'snapshot';
        pr.chunks = { meta, text: text ?? JSON.stringify(data) ?? 'null', sent: 0, acked: 0, ackedAtHeartbeat: 0 };
        continue;
      }
      const end = Math.min(this.log.lastIndex, prev + limit);
      const last = end > prev ? this.log.fit(prev + 1, end, maxBytesPerMessage) : prev;
      const full = pr.inflight.length >= maxInflightMessages || this.log.bytes(pr.match + 1, prev) >= maxInflightBytes;
      if ((last === prev && !force) || (pr.state === 'replicate' && full)) return;
      this.send(id, this.appendRequest(prev, prevTerm, last));
      force = false;
      if (pr.state === 'probe') pr.paused = true;
      else if (last > prev) {
        pr.inflight.push(last);
        pr.next = last + 1;
      }
    }
  }

  /**
   * An idle leader's only traffic: one AppendEntries per follower per heartbeat timeout (§5.2).
   * Nothing is sent twice to a slow or stopped follower: a window that has not moved since the
   * last heartbeat is asked about with an empty AppendEntries anchored at its end (the follower
   * rejects it if part of the window was lost, and the leader probes); a follower that is probed,
   * or whose snapshot has not moved, gets one message at a time, an empty one while the last is
   * unanswered.
   */
  private heartbeat(id: ReplicaId, pr: Progress): void {
    if (pr.state === 'replicate' && this.log.term(pr.match) === undefined) pr.becomeProbe();
    const stalled = pr.inflight.length > 0 && pr.match === pr.matchAtHeartbeat;
    pr.matchAtHeartbeat = pr.match;
    if (pr.state === 'replicate') return this.sendHeartbeat(id, stalled ? pr.next - 1 : pr.match);
    const c = pr.chunks;
    if (c && c.acked !== c.ackedAtHeartbeat) return void (c.ackedAtHeartbeat = c.acked);
    if (c) c.sent = c.acked;
    const limit = pr.paused ? 0 : this.config.maxEntriesPerMessage;
    pr.paused = false;
    this.replicate(id, pr, true, limit);
  }

  /**
   * An empty AppendEntries anchored at `at`: at `match`, which the follower holds, it never
   * disturbs the stream in flight.
   */
  private sendHeartbeat(id: ReplicaId, at: number): void {
    const term = this.log.term(at);
    if (term !== undefined) this.send(id, this.appendRequest(at, term, at));
  }

  /** AppendEntries with the entries after `prevLogIndex` up to `last`: one object for every follower at that point. */
  private appendRequest(prevLogIndex: number, prevLogTerm: number, last: number): AppendRequest<T> {
    const { term, commitIndex: leaderCommit, round } = this;
    const m = this.appends.find((a) => a.prevLogIndex === prevLogIndex);
    const same = m?.term === term && m.leaderCommit === leaderCommit && m.round === round;
    if (same && prevLogIndex + m.entries.length === last) return m;
    const entries = last > prevLogIndex ? this.log.slice(prevLogIndex + 1, last) : [];
    const made = appendRequest({ from: this.config.id, term, prevLogIndex, prevLogTerm, entries, leaderCommit, round });
    if (this.appends.unshift(made) > 8) this.appends.pop(); // enough for the few messages a tick sends each follower
    return made;
  }
}
