import type { Cluster } from '../core/cluster.js';
import type { Message } from '../core/message.js';
import type { ReplicaId, StateMachineTransition } from '../core/types.js';
import { Replica } from '../replica/replica.js';
import type { ReplicaOptions } from '../replica/options.js';
import type { GroupId } from './envelope.js';

/**
 * The {@link Replica} of one group, driven by its host: the unchanged driver over the unchanged
 * algorithm. It tells the host when work arrives (a wake from a proposal or a request) and counts
 * the requests still waiting, so that the host never quiesces a group a caller waits on.
 */
export class GroupReplica<T extends StateMachineTransition, D = unknown> extends Replica<T, D> {
  /** readIndex, membership changes and transfers not yet settled. */
  outstanding = 0;
  /** What {@link GroupReplica.changed} last saw: role, term, leader, commit, applied and last index. */
  private readonly seen = {
    role: '',
    term: 0,
    leader: undefined as ReplicaId | undefined,
    commit: 0,
    applied: 0,
    last: 0,
  };

  constructor(
    options: ReplicaOptions<T, D>,
    private readonly onWake: () => void,
  ) {
    super(options);
  }

  override wake(): void {
    super.wake();
    this.onWake?.(); // unset while the base constructor runs
  }

  /**
   * Whether the role, term, leader, commit, applied or last index changed since the last call
   * (true on the first once loaded). The host counts a group's quiet time from its last change,
   * and wakes a quiescent group that changes. It reads the algorithm's fields: building `status`
   * (followers sorted, arrays copied) for every group on every round cost more than most of the
   * group's own tick.
   */
  changed(): boolean {
    const r = this.raft;
    if (!r) return false;
    const s = this.seen;
    const last = r.log.lastIndex;
    if (
      s.role === r.role.kind &&
      s.term === r.term &&
      s.leader === r.leaderId &&
      s.commit === r.commitIndex &&
      s.applied === r.lastApplied &&
      s.last === last
    )
      return false;
    s.role = r.role.kind;
    s.term = r.term;
    s.leader = r.leaderId;
    s.commit = r.commitIndex;
    s.applied = r.lastApplied;
    s.last = last;
    return true;
  }

  override start(): Promise<void> {
    return Promise.reject(new TypeError('a group replica is ticked by its RaftHost: start the host instead'));
  }

  override readIndex(): Promise<void> {
    return this.track(super.readIndex());
  }

  override addMember(id: ReplicaId): Promise<void> {
    return this.track(super.addMember(id));
  }

  override removeMember(id: ReplicaId): Promise<void> {
    return this.track(super.removeMember(id));
  }

  override transferLeadership(to: ReplicaId): Promise<void> {
    return this.track(super.transferLeadership(to));
  }

  private track(p: Promise<void>): Promise<void> {
    this.outstanding++;
    const done = (): void => void this.outstanding--;
    p.then(done, done);
    return p;
  }
}

/** What a group's cluster needs from its host: where to queue a message, whether it stopped, what to tell. */
export interface GroupWire<T extends StateMachineTransition, D> {
  send(to: ReplicaId, group: GroupId, message: Message<T, D>): void;
  stopped(): boolean;
  /** A group's voters changed: the host's set of peers may have. */
  membersChanged(): void;
}

/** One group's view of the host's network: messages in through its inbox, out through the host's batch. */
export class GroupCluster<T extends StateMachineTransition, D> implements Cluster<T, D> {
  inbox: Message<T, D>[] = [];
  leaderId: ReplicaId | undefined = undefined;
  /** The voters, as the replica last reported them. */
  members: readonly ReplicaId[];

  constructor(
    private readonly group: GroupId,
    private readonly wire: GroupWire<T, D>,
    members: readonly ReplicaId[],
  ) {
    this.members = members;
  }

  sendMessage(toId: ReplicaId, message: Message<T, D>): void {
    this.wire.send(toId, this.group, message);
  }
  receiveMessages(): Message<T, D>[] {
    const inbox = this.inbox;
    if (inbox.length > 0) this.inbox = [];
    return inbox;
  }
  halt(): boolean {
    return this.wire.stopped();
  }
  registerLeader(leaderId: ReplicaId | undefined): void {
    this.leaderId = leaderId;
  }
  registerMembership(memberIds: ReplicaId[]): void {
    this.members = [...memberIds];
    this.wire.membersChanged();
  }
}
