import type { Message } from '../core/message.js';
import type { ReplicaId, StateMachineTransition } from '../core/types.js';
import type { Replica } from '../replica/replica.js';
import type { ReplicaOptions } from '../replica/options.js';
import { emptyEnvelope, type Envelope, type GroupId, type HostNetwork } from './envelope.js';
import { GroupCluster, GroupReplica, type GroupWire } from './group.js';
import { Liveness } from './liveness.js';

/**
 * How one group is built on a host: the {@link ReplicaOptions} of its member here, less what the
 * host provides (its id, cluster and clock), plus the group's voting members.
 */
export type GroupOptions<T extends StateMachineTransition, D = unknown> = Omit<
  ReplicaOptions<T, D>,
  'id' | 'peerIds' | 'cluster' | 'clock' | 'tickInterval'
> & {
  /**
   * The group's voting members: process ids, this one included (for a member that joins a
   * running group with `join: true`, the current members). A process's id is its replica id in
   * every group.
   */
  members: ReplicaId[];
};

/** How a {@link RaftHost} is built. */
export interface RaftHostOptions<T extends StateMachineTransition, D = unknown> {
  /** This process's id: its replica id in every group it hosts. */
  id: ReplicaId;
  /** The one link to every other process, shared by all groups. */
  network: HostNetwork<T, D>;
  /**
   * The host's only clock, in ms; each group reads a clock derived from it (stopped while the
   * group is quiescent).
   * @defaultValue `Date.now`
   */
  clock?: () => number;
  /**
   * This incarnation of the process: must grow across restarts, so peers notice a restart
   * however quick (they wake the groups it is in).
   * @defaultValue the clock's reading at construction
   */
  epoch?: number;
  /**
   * Ms between two envelopes to a peer that shares a group with this process, sent empty if
   * nothing else is due: the process-level heartbeat, one per pair of processes whatever the
   * number of groups.
   * @defaultValue 50
   */
  livenessInterval?: number;
  /**
   * Ms without an envelope from a peer after which it is suspected down: the quiescent groups it
   * is in wake up (so those it led elect a new leader). Keep it below the election timeouts.
   * @defaultValue 3 × `livenessInterval`
   */
  suspectAfter?: number;
  /**
   * Whether idle groups quiesce: a leader whose followers all hold its whole log, applied and
   * committed, for `quiesceAfter` ms stops heartbeating, and the group's timers stop on every
   * member until work, a vote or a suspected member wakes it (docs/multiraft.md).
   * @defaultValue true
   */
  quiesce?: boolean;
  /**
   * Ms a group must stay unchanged before its leader quiesces it; 0 takes twice the group's
   * `heartbeatTimeout`, so the followers have heard the last commit index.
   * @defaultValue 0
   */
  quiesceAfter?: number;
  /**
   * Ms the {@link RaftHost.start} loop sleeps after a tick while a group is awake, unless woken by
   * an envelope or work. With every group quiescent it sleeps until its next liveness envelope or
   * suspicion is due (at most `livenessInterval`), so idle groups cost no wake-ups either.
   * @defaultValue 5
   */
  tickInterval?: number;
}

/** Counts of what a {@link RaftHost} did. */
export interface RaftHostStats {
  /** Rounds of {@link RaftHost.tick}. */
  readonly ticks: number;
  /** Group ticks run: an idle (quiescent) group adds none. */
  readonly groupTicks: number;
  /** Envelopes sent, heartbeats included: one per peer per tick at most. */
  readonly envelopesSent: number;
  /** Raft messages sent, all groups together. */
  readonly messagesSent: number;
  /**
   * Messages dropped on arrival: for a group this process does not host (yet, or any more), or
   * naming a sender other than the process that sent the envelope.
   */
  readonly unknownGroup: number;
  /** Times a group quiesced here. */
  readonly quiesced: number;
}

/** One group on this host. */
interface Group<T extends StateMachineTransition, D> {
  readonly id: GroupId;
  readonly cluster: GroupCluster<T, D>;
  replica: GroupReplica<T, D>;
  readonly heartbeatTimeout: number;
  /** While quiescent, the group's clock stands at `frozenAt - offset`. */
  quiescent: boolean;
  frozenAt: number;
  /** The time the group spent quiescent so far: its clock is the host's less this. */
  offset: number;
  /** Host time of the last change of role, term, leader or an index ({@link GroupReplica.changed}), or wake. */
  changedAt: number;
  failed: boolean;
}

/**
 * Many Raft groups in one process: each group has its own id, members (a subset of the
 * processes), state machine, storage and options, and its member here is an ordinary
 * {@link Replica} (the same driver over the same algorithm); the host ticks them, batches their
 * messages into one {@link Envelope} per peer per tick, and quiesces the idle ones so that they
 * cost nothing.
 *
 * Drive it with {@link RaftHost.start}, or call {@link RaftHost.tick} by hand on a virtual clock
 * (a run is then deterministic). Do not call `start()` or `tick()` on a group's replica: the
 * host ticks it. Everything else of the replica (status, events, readIndex, membership changes,
 * transfers, a {@link ProposalQueue} attached to it) works as usual; work handed to it wakes its
 * group.
 *
 * @example
 * ```ts
 * const host = new RaftHost<Cmd>({ id: 1, network });
 * const replica = host.createGroup(7, {
 *   members: [1, 2, 3], stateMachine: proposals, noopTransition: { id: 'noop' },
 *   heartbeatTimeout: 50, electionTimeoutRange: [300, 600], storage,
 * });
 * proposals.attach(replica);
 * void host.start();
 * ```
 */
export class RaftHost<T extends StateMachineTransition, D = unknown> {
  /** This process's id. */
  readonly id: ReplicaId;
  private readonly network: HostNetwork<T, D>;
  private readonly clock: () => number;
  private readonly epoch: number;
  private readonly groups = new Map<GroupId, Group<T, D>>();
  /** The groups that are ticked every round: not quiescent, not failed. A quiescent group costs nothing. */
  private readonly awake = new Set<Group<T, D>>();
  /** The processes this one shares a group with; recomputed when groups or their members change. */
  private peers: ReplicaId[] | undefined;
  private readonly outbox = new Map<ReplicaId, Envelope<T, D>>();
  private readonly lastSent = new Map<ReplicaId, number>();
  private readonly liveness: Liveness;
  private readonly options: Required<Omit<RaftHostOptions<T, D>, 'network' | 'clock' | 'epoch'>>;
  private readonly counts = {
    ticks: 0,
    groupTicks: 0,
    envelopesSent: 0,
    messagesSent: 0,
    unknownGroup: 0,
    quiesced: 0,
  };
  private isStopped = false;
  /** What every group's cluster asks of the host: one object for all, not closures per group. */
  private readonly wire: GroupWire<T, D> = {
    send: (to, group, m) => this.enqueue(to, group, m),
    stopped: () => this.isStopped,
    membersChanged: () => (this.peers = undefined),
  };
  private endSleep: (() => void) | undefined;
  private woken = false;

  /** @throws TypeError naming the option, if one is invalid. */
  constructor(options: RaftHostOptions<T, D>) {
    if (!Number.isSafeInteger(options.id)) throw new TypeError(`RaftHost: id must be an integer, got ${options.id}`);
    this.id = options.id;
    this.network = options.network;
    this.clock = options.clock ?? Date.now;
    this.epoch = options.epoch ?? this.clock();
    const livenessInterval = options.livenessInterval ?? 50;
    this.options = {
      id: options.id,
      livenessInterval,
      suspectAfter: options.suspectAfter ?? 3 * livenessInterval,
      quiesce: options.quiesce ?? true,
      quiesceAfter: options.quiesceAfter ?? 0,
      tickInterval: options.tickInterval ?? 5,
    };
    for (const k of ['livenessInterval', 'suspectAfter', 'quiesceAfter', 'tickInterval'] as const) {
      const v = this.options[k];
      if (!(Number.isFinite(v) && v >= 0)) throw new TypeError(`RaftHost: ${k} must be a number of ms >= 0, got ${v}`);
    }
    this.liveness = new Liveness(this.options.suspectAfter, this.clock());
    this.network.registerWakeup?.(() => this.wake());
  }

  /**
   * Creates this process's member of group `id` and returns its replica; the group ticks from
   * the next {@link RaftHost.tick}. Pass the same storage again to restart the member after a
   * crash of the process.
   * @throws TypeError if the host already has group `id`, or `members` lacks this process
   * (unless `join`); {@link InvalidOptionsError} if an option is invalid.
   */
  createGroup(id: GroupId, options: GroupOptions<T, D>): Replica<T, D> {
    if (!Number.isSafeInteger(id)) throw new TypeError(`createGroup: a group id must be an integer, got ${id}`);
    if (this.groups.has(id)) throw new TypeError(`createGroup: group ${id} exists on process ${this.id}`);
    const { members, ...rest } = options;
    if (!Array.isArray(members)) throw new TypeError('createGroup: members must be an array of process ids');
    if (!members.includes(this.id) && !options.join)
      throw new TypeError(`createGroup: members of group ${id} must include this process (${this.id})`);
    const now = this.clock();
    const cluster = new GroupCluster<T, D>(id, this.wire, members);
    const g = {
      id,
      cluster,
      heartbeatTimeout: options.heartbeatTimeout,
      quiescent: false,
      frozenAt: 0,
      offset: 0,
      changedAt: now,
      failed: false,
    } as Group<T, D>;
    g.replica = new GroupReplica<T, D>(
      {
        ...rest,
        id: this.id,
        peerIds: members.filter((m) => m !== this.id),
        cluster,
        clock: () => (g.quiescent ? g.frozenAt : this.clock()) - g.offset,
      },
      () => this.resume(g),
    );
    this.groups.set(id, g);
    this.awake.add(g);
    this.peers = undefined;
    this.wake();
    return g.replica;
  }

  /**
   * Stops this process's member of group `id` for good (see {@link Replica.stop}) and forgets it;
   * messages for it are dropped from then on. Resolves at once if there is no such group.
   */
  async removeGroup(id: GroupId): Promise<void> {
    const g = this.groups.get(id);
    if (!g) return;
    this.groups.delete(id);
    this.awake.delete(g);
    this.peers = undefined;
    await g.replica.stop();
  }

  /** The replica of group `id` on this process, if it hosts one. */
  group(id: GroupId): Replica<T, D> | undefined {
    return this.groups.get(id)?.replica;
  }

  /** The ids of the groups this process hosts, in creation order. */
  groupIds(): GroupId[] {
    return [...this.groups.keys()];
  }

  /**
   * Spreads leadership over the processes: for each group this process leads, if another live
   * member leads at least two groups fewer (as far as this process sees, by the leaders of the
   * groups it hosts), it hands that group's leadership to it ({@link Replica.transferLeadership}).
   * Call it now and then on every process (say every few seconds, and after a process comes
   * back: it leads nothing then). Returns the groups whose transfer it started.
   */
  balanceLeaders(): GroupId[] {
    const now = this.clock();
    const count = new Map<ReplicaId, number>();
    for (const g of this.groups.values()) {
      for (const m of g.cluster.members) if (!count.has(m)) count.set(m, 0);
      const l = g.cluster.leaderId;
      if (l !== undefined) count.set(l, (count.get(l) ?? 0) + 1);
    }
    const started: GroupId[] = [];
    for (const g of this.groups.values()) {
      if (g.failed || g.cluster.leaderId !== this.id) continue;
      const s = g.replica.status;
      if (s.role !== 'leader' || s.transfer || s.membershipChange) continue;
      let to: ReplicaId | undefined;
      for (const p of s.voters)
        if (p !== this.id && this.liveness.isUp(p, now) && (to === undefined || count.get(p)! < count.get(to)!)) to = p;
      if (to === undefined || count.get(this.id)! - count.get(to)! < 2) continue;
      count.set(this.id, count.get(this.id)! - 1);
      count.set(to, count.get(to)! + 1);
      g.replica.transferLeadership(to).catch(() => undefined); // a failed transfer is retried by the next call
      started.push(g.id);
    }
    return started;
  }

  /** Whether group `id` is quiescent here (its timers stopped); false if there is no such group. */
  isQuiescent(id: GroupId): boolean {
    return this.groups.get(id)?.quiescent ?? false;
  }

  /** What the host has done so far (a copy). */
  get stats(): RaftHostStats {
    return { ...this.counts };
  }

  /**
   * One round for every group: takes the envelopes that arrived and hands each group its
   * messages, wakes the groups of peers found down (or back), ticks every group that has work
   * (all at once, so their storage writes can share one flush), then quiesces the idle ones and
   * sends one envelope per peer. A group whose tick fails (its storage, its state machine) is
   * stopped as a {@link Replica} would be; the other groups go on.
   */
  async tick(): Promise<void> {
    const now = this.clock();
    this.counts.ticks++;
    const notes: Envelope<T, D>[] = [];
    const due = new Set(this.awake);
    for (const envelope of this.network.receive()) {
      if (this.liveness.heard(envelope.from, envelope.epoch, now)) this.resumeMembersOf(envelope.from);
      for (const [gid, m] of envelope.messages) {
        const g = this.groups.get(gid);
        // A member speaks for itself only: a message relayed under another process's name is dropped.
        if (g && m.from === envelope.from) {
          g.cluster.inbox.push(m);
          if (!g.failed) due.add(g);
        } else this.counts.unknownGroup++;
      }
      if (envelope.quiesce.length + envelope.wake.length > 0) notes.push(envelope);
    }
    for (const peer of this.liveness.check(now)) {
      this.resumeMembersOf(peer);
      for (const g of this.awake) due.add(g);
    }
    await Promise.all(Array.from(due, (g) => this.tickGroup(g)));
    for (const envelope of notes) this.takeNotes(envelope);
    if (this.options.quiesce) for (const g of due) if (!g.quiescent) this.maybeQuiesce(g, now);
    this.flush(now);
  }

  private async tickGroup(g: Group<T, D>): Promise<void> {
    const quiescent = g.quiescent;
    // A quiescent group answers what it receives on its stopped clock; anything but a heartbeat or
    // its answer wakes it.
    const waking = quiescent && g.cluster.inbox.some((m) => m.type !== 'appendResponse' && !isHeartbeat(m));
    if (waking) this.resume(g);
    this.counts.groupTicks++;
    try {
      await g.replica.tick();
    } catch {
      // The replica has failed for good (its own events say why); the other groups go on.
      g.failed = true;
      this.awake.delete(g);
      return;
    }
    if (g.replica.changed()) {
      g.changedAt = this.clock();
      if (g.quiescent) this.resume(g);
    }
  }

  /** A leader whose group has been still long enough, with every live follower up to date, quiesces it. */
  private maybeQuiesce(g: Group<T, D>, now: number): void {
    // The clock first: a busy group changes every round, and its status is not free to build.
    if (now - g.changedAt < (this.options.quiesceAfter || 2 * g.heartbeatTimeout)) return;
    const s = g.replica.status;
    if (s.role !== 'leader' || g.replica.outstanding > 0 || s.membershipChange || s.transfer) return;
    if (s.commitIndex !== s.lastLogIndex || s.lastApplied !== s.lastLogIndex) return;
    for (const f of s.followers)
      if ((!f.voter || f.matchIndex !== s.lastLogIndex) && this.liveness.isUp(f.id, now)) return;
    this.freeze(g);
    for (const f of s.followers)
      if (this.liveness.isUp(f.id, now)) this.envelopeTo(f.id).quiesce.push([g.id, s.term, s.lastLogIndex]);
  }

  /** The quiescence notes of one envelope: follow a leader into quiescence, or wake at a member's request. */
  private takeNotes(envelope: Envelope<T, D>): void {
    for (const [gid, term, index] of envelope.quiesce) {
      const g = this.groups.get(gid);
      if (!g || g.failed || g.quiescent) continue;
      const s = g.replica.status;
      const caughtUp = s.lastLogIndex === index && s.commitIndex === index && s.lastApplied === index;
      if (s.role === 'follower' && s.term === term && s.leaderId === envelope.from && caughtUp) this.freeze(g);
      else this.envelopeTo(envelope.from).wake.push(gid); // the leader goes on heartbeating until we agree
    }
    for (const gid of envelope.wake) {
      const g = this.groups.get(gid);
      if (g) this.resume(g);
    }
  }

  /** Stops a group's clock at the host's time now: never before a reading the group has taken. */
  private freeze(g: Group<T, D>): void {
    g.quiescent = true;
    g.frozenAt = this.clock();
    this.awake.delete(g);
    this.counts.quiesced++;
  }

  /** Starts a group's clock again where it stopped, and counts the wake as a change. */
  private resume(g: Group<T, D>): void {
    const now = this.clock();
    if (g.quiescent) {
      g.offset += now - g.frozenAt;
      g.quiescent = false;
      if (!g.failed) this.awake.add(g);
    }
    g.changedAt = now;
    this.wake();
  }

  private resumeMembersOf(peer: ReplicaId): void {
    for (const g of this.groups.values()) if (g.cluster.members.includes(peer)) this.resume(g);
  }

  private envelopeTo(to: ReplicaId): Envelope<T, D> {
    let e = this.outbox.get(to);
    if (!e) this.outbox.set(to, (e = emptyEnvelope(this.id, this.epoch)));
    return e;
  }

  private enqueue(to: ReplicaId, group: GroupId, m: Message<T, D>): void {
    this.envelopeTo(to).messages.push([group, m]);
    this.counts.messagesSent++;
  }

  /** Sends what the tick queued, one envelope per peer, and an empty one to a peer not written to lately. */
  private flush(now: number): void {
    for (const peer of (this.peers ??= this.peersNow()))
      if (now - (this.lastSent.get(peer) ?? -Infinity) >= this.options.livenessInterval) this.envelopeTo(peer);
    for (const [to, envelope] of this.outbox) {
      this.network.send(to, envelope);
      this.lastSent.set(to, now);
      this.counts.envelopesSent++;
    }
    this.outbox.clear();
  }

  private peersNow(): ReplicaId[] {
    const peers = new Set<ReplicaId>();
    for (const g of this.groups.values()) for (const p of g.cluster.members) if (p !== this.id) peers.add(p);
    return [...peers].sort((a, b) => a - b);
  }

  /** Ends the idle sleep of {@link RaftHost.start}: an envelope or work arrived. */
  wake(): void {
    this.woken = true;
    this.endSleep?.();
  }

  /**
   * Runs the tick loop until {@link RaftHost.stop} or the network's `halt()`: ticks back to back
   * while woken, and otherwise every `tickInterval` ms.
   */
  async start(): Promise<void> {
    while (!this.isStopped && !this.network.halt?.()) {
      this.woken = false;
      await this.tick();
      if (this.woken) await new Promise<void>((resolve) => setImmediate(resolve));
      else
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, this.idleFor(this.clock()));
          function done(): void {
            clearTimeout(timer);
            resolve();
          }
          this.endSleep = done;
        });
      this.endSleep = undefined;
    }
  }

  /**
   * How long the loop may sleep: `tickInterval` while a group is awake; otherwise until the next
   * envelope to a peer or the next suspicion is due, since nothing else happens on its own then.
   */
  private idleFor(now: number): number {
    const { tickInterval, livenessInterval } = this.options;
    if (this.awake.size > 0) return tickInterval;
    let due = Math.min(livenessInterval, this.liveness.nextCheck() - now);
    for (const peer of this.peers ?? []) due = Math.min(due, (this.lastSent.get(peer) ?? 0) + livenessInterval - now);
    return Math.max(tickInterval, due);
  }

  /** Stops every group ({@link Replica.stop}) and the loop of {@link RaftHost.start}. Idempotent. */
  async stop(): Promise<void> {
    this.isStopped = true;
    this.endSleep?.();
    await Promise.all([...this.groups.values()].map((g) => g.replica.stop()));
  }
}

/** An AppendEntries with no entries. */
function isHeartbeat<T, D>(m: Message<T, D>): boolean {
  return m.type === 'append' && m.entries.length === 0;
}
