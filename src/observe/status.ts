// What `replica.status` answers, read off the algorithm's state: where the replica stands, and on
// a leader how far each follower is and what change or transfer is under way.
import type { Raft } from '../core/raft.js';
import type { ReplicaId, StateMachineTransition } from '../core/types.js';
import type { Role } from './events.js';

/** What a leader knows of one follower, in {@link ReplicaStatus.followers}. */
export interface FollowerStatus {
  /** The follower's id. */
  id: ReplicaId;
  /** False for a new member still catching up before it becomes a voter. */
  voter: boolean;
  /** The highest index known to be in its log (0 until it first answers). */
  matchIndex: number;
  /** How many entries it is behind the leader's log: `lastLogIndex - matchIndex`. */
  lag: number;
  /**
   * How the leader sends to it: `probe` (looking for where their logs agree), `replicate`
   * (streaming entries), `snapshot` (sending a snapshot, as `snapshotBytes` tells).
   */
  state: 'probe' | 'replicate' | 'snapshot';
  /** While a snapshot is being sent: bytes acknowledged so far, of the whole. */
  snapshotBytes?: SnapshotProgress;
}

/** How far a snapshot being sent has got, in bytes of its encoded text. */
export interface SnapshotProgress {
  /** Bytes the follower has acknowledged. */
  acked: number;
  /** Bytes in all. */
  total: number;
}

/** A membership change under way on a leader, in {@link ReplicaStatus.membershipChange}. */
export interface MembershipChangeStatus {
  /** The member added or removed. */
  id: ReplicaId;
  /** Added or removed. */
  kind: 'add' | 'remove';
  /** `catching-up`: a new member still catches up as a non-voter; `committing`: the entry awaits commit. */
  phase: 'catching-up' | 'committing';
}

/** A leadership transfer under way on a leader, in {@link ReplicaStatus.transfer}. */
export interface TransferStatus {
  /** The member leadership is handed to. */
  to: ReplicaId;
}

/** A snapshot of where a replica stands, read through {@link Replica.status}. */
export interface ReplicaStatus {
  /** This replica's id. */
  id: ReplicaId;
  /** Its role now; a replica campaigning (pre-vote or vote) is a candidate. */
  role: Role;
  /** Its current term. */
  term: number;
  /** The leader this replica knows of, if any. */
  leaderId: ReplicaId | undefined;
  /** The highest index known committed. */
  commitIndex: number;
  /** The highest index applied to the state machine (or covered by its snapshot). */
  lastApplied: number;
  /** The index of the last entry in its log. */
  lastLogIndex: number;
  /** The voting members, as this replica's log and snapshot define them (empty before the first tick). */
  voters: ReplicaId[];
  /** On a leader, one row per follower (voters and members catching up), by id; empty elsewhere. */
  followers: FollowerStatus[];
  /**
   * On a leader, the membership change under way: the member added or removed, and whether a
   * new member is still catching up (`catching-up`) or its configuration entry awaits commit.
   */
  membershipChange: MembershipChangeStatus | undefined;
  /** On a leader, the leadership transfer under way, to `to`. */
  transfer: TransferStatus | undefined;
}

/** The status of replica `id`, whose algorithm is `raft` (undefined before its first tick). */
export function statusOf<T extends StateMachineTransition, D>(
  id: ReplicaId,
  raft: Raft<T, D> | undefined,
): ReplicaStatus {
  if (!raft) {
    const none = { leaderId: undefined, membershipChange: undefined, transfer: undefined };
    return {
      id,
      role: 'follower',
      term: 0,
      commitIndex: 0,
      lastApplied: 0,
      lastLogIndex: 0,
      voters: [],
      followers: [],
      ...none,
    };
  }
  const role = raft.role;
  const last = raft.log.lastIndex;
  const voters = raft.membership.voters;
  const followers: FollowerStatus[] = [];
  if (role.kind === 'leader') {
    for (const [peer, pr] of [...role.progress].sort(([a], [b]) => a - b)) {
      const row: FollowerStatus = {
        id: peer,
        voter: voters.includes(peer),
        matchIndex: pr.match,
        lag: last - pr.match,
        state: pr.state,
      };
      if (pr.chunks) row.snapshotBytes = { acked: pr.chunks.acked, total: pr.chunks.text.length };
      followers.push(row);
    }
  }
  const change = role.kind === 'leader' ? raft.change : undefined;
  const transfer = role.kind === 'leader' ? raft.transfer : undefined;
  return {
    id,
    role: role.kind,
    term: raft.term,
    leaderId: raft.leaderId,
    commitIndex: raft.commitIndex,
    lastApplied: raft.lastApplied,
    lastLogIndex: last,
    voters: [...voters].sort((a, b) => a - b),
    followers,
    membershipChange: change && {
      id: change.id,
      kind: change.add ? 'add' : 'remove',
      phase: change.index === 0 ? 'catching-up' : 'committing',
    },
    transfer: transfer && { to: transfer.to },
  };
}
