import type { LogEntry, ReplicaId, Snapshot } from './types.js';

/**
 * A log entry as the core keeps it and a `Storage` must keep it, `kind` and `config`
 * included: a storage that dropped `config` would restart the replica with the membership of its
 * options, not the cluster's.
 */
export type Entry<T> = LogEntry<T> & (
  | {
      /**
       * `transition`: a user's transition, applied and reported. `noop`: the first entry of a
       * leader's term; applied (it must have no effect), never reported.
       */
      readonly kind: 'transition' | 'noop';
      /** Only on configuration entries. */
      readonly config?: undefined;
    }
  | {
      /** A configuration entry: neither applied nor reported. */
      readonly kind: 'config';
      /** The voting members from this entry on. */
      readonly config: ReplicaId[];
    }
);

/**
 * A snapshot as the core keeps it and a `Storage` must keep it: the configuration in effect
 * at its last index travels with it, since the snapshot replaces the configuration entries it covers.
 */
export type CoreSnapshot<D> = Snapshot<D> & {
  /** The voting members as of `lastIncludedIndex`. */
  readonly members?: ReplicaId[];
};

/** What every message carries. */
export interface MessageBase {
  /** The kind of message. */
  readonly type: string;
  /** The sender's id. */
  readonly from: ReplicaId;
  /** The sender's current term when it sent the message. */
  readonly term: number;
}

/** Asks for a vote in `term` (§5.2). */
export interface VoteRequest extends MessageBase {
  readonly type: 'vote';
  /** A pre-vote (§9.6 of the dissertation): would the voter grant a vote in `term`? Changes nothing. */
  readonly pre: boolean;
  /** Sent on a leadership transfer: voters grant it even though they heard from a leader recently. */
  readonly force: boolean;
  /** Index of the candidate's last log entry, for the up-to-date check of §5.4.1. */
  readonly lastLogIndex: number;
  /** Term of the candidate's last log entry. */
  readonly lastLogTerm: number;
}

/** Answers a {@link VoteRequest}. */
export interface VoteResponse extends MessageBase {
  readonly type: 'voteResponse';
  /** Answers a pre-vote. */
  readonly pre: boolean;
  /** Whether the vote is granted. */
  readonly granted: boolean;
}

/** Replicates entries after `prevLogIndex`, or (with none) serves as a heartbeat (§5.3). */
export interface AppendRequest<T> extends MessageBase {
  readonly type: 'append';
  /** Index of the entry just before `entries`. */
  readonly prevLogIndex: number;
  /** Term of that entry: the follower must hold it to accept `entries`. */
  readonly prevLogTerm: number;
  /** Entries to store, in index order; empty for a heartbeat. */
  readonly entries: Entry<T>[];
  /** The leader's commit index. */
  readonly leaderCommit: number;
  /** The leader's latest read round, echoed in the answer to confirm its leadership for reads. */
  readonly round: number;
}

/**
 * Answers an {@link AppendRequest} or a {@link SnapshotRequest}. On success, `index` is the
 * last index the follower now holds in agreement with the leader. On rejection, `index` is the
 * rejected `prevLogIndex`, and `hintIndex`/`hintTerm` name the follower's last entry that may
 * still agree (its term is at most the rejected `prevLogTerm`), so the leader skips whole terms.
 */
export interface AppendResponse extends MessageBase {
  readonly type: 'appendResponse';
  /** Whether the entries (or snapshot) were accepted. */
  readonly success: boolean;
  /** See the interface's description. */
  readonly index: number;
  /** On rejection: the follower's last index that may agree with the leader. */
  readonly hintIndex: number;
  /** On rejection: the term of the follower's entry at `hintIndex`. */
  readonly hintTerm: number;
  /** The `round` of the AppendEntries answered (0 for a snapshot). */
  readonly round: number;
}

/** Tells the target of a leadership transfer, now up to date, to campaign at once. */
export interface TimeoutNow extends MessageBase {
  readonly type: 'timeoutNow';
}

/** A snapshot without its data: what each chunk of an InstallSnapshot says of the snapshot. */
export type SnapshotMeta = Omit<CoreSnapshot<unknown>, 'data'>;

/**
 * Sends the leader's snapshot to a follower that needs entries the leader has compacted (§7), in
 * chunks (Figure 13): the snapshot's data travels as JSON text, `size` UTF-16 code units in all,
 * and this message carries the part from `offset`. The follower installs it once it holds the
 * whole text; the chunk that completes it is the one that plays Figure 13's `done`.
 */
export interface SnapshotRequest extends MessageBase {
  readonly type: 'snapshot';
  /** The snapshot's last included index and term, and its members. */
  readonly snapshot: SnapshotMeta;
  /** Where `chunk` starts in the JSON text of the snapshot's data. */
  readonly offset: number;
  /** The length of that whole text. */
  readonly size: number;
  /** The text from `offset` on; empty when the leader only asks how far the follower has got. */
  readonly chunk: string;
}

/** Answers a {@link SnapshotRequest} whose snapshot is not complete yet: how much of it the follower holds. */
export interface SnapshotResponse extends MessageBase {
  readonly type: 'snapshotResponse';
  /** The `lastIncludedIndex` of the snapshot being received. */
  readonly index: number;
  /** How much of its text the follower holds, from the start: the leader goes on from there. */
  readonly offset: number;
}

/** Every message replicas exchange: plain data that survives a JSON round-trip. */
// D (the snapshot data's type) stays for the API, though a snapshot now travels as JSON text.
export type Message<T, D = unknown> =
  | VoteRequest | VoteResponse | AppendRequest<T> | AppendResponse | SnapshotRequest | SnapshotResponse | TimeoutNow;

/** A message's fields as its constructor takes them: all but `type`, with the defaults `D` optional. */
type Fields<M extends MessageBase, Defaulted extends keyof M = never> =
  Omit<M, 'type' | Defaulted> & Partial<Pick<M, Defaulted>>;

/** A vote request: a plain vote unless `pre` (a pre-vote) or `force` (a leadership transfer) says otherwise. */
export const voteRequest = (m: Fields<VoteRequest, 'pre' | 'force'>): VoteRequest =>
  ({ type: 'vote', pre: false, force: false, ...m });
/** The answer to a vote request (a pre-vote's if `pre`). */
export const voteResponse = (m: Fields<VoteResponse, 'pre'>): VoteResponse =>
  ({ type: 'voteResponse', pre: false, ...m });
/** AppendEntries; `round` is 0 outside read rounds. */
export const appendRequest = <T>(m: Fields<AppendRequest<T>, 'round'>): AppendRequest<T> => {
  // Field by field, not a spread: V8 copies a spread slowly, and this runs for every message.
  const { from, term, prevLogIndex, prevLogTerm, entries, leaderCommit, round = 0 } = m;
  return { type: 'append', from, term, prevLogIndex, prevLogTerm, entries, leaderCommit, round };
};
/** The answer to AppendEntries or to a whole snapshot; the hints matter only on rejection. */
export const appendResponse = (m: Fields<AppendResponse, 'hintIndex' | 'hintTerm' | 'round'>): AppendResponse => {
  const { from, term, success, index, hintIndex = 0, hintTerm = 0, round = 0 } = m;
  return { type: 'appendResponse', from, term, success, index, hintIndex, hintTerm, round };
};
/** One chunk of a snapshot. */
export const snapshotRequest = (m: Fields<SnapshotRequest>): SnapshotRequest => ({ type: 'snapshot', ...m });
/** How much of a snapshot the follower holds. */
export const snapshotResponse = (m: Fields<SnapshotResponse>): SnapshotResponse => ({ type: 'snapshotResponse', ...m });
/** Tells a transfer's target to campaign now. */
export const timeoutNow = (m: Fields<TimeoutNow>): TimeoutNow => ({ type: 'timeoutNow', ...m });
