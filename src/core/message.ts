import type { LogEntry, ReplicaId, Snapshot } from './types.js';

/** A log entry as the core keeps it: a noop is the first entry of a leader's term. */
export interface Entry<T> extends LogEntry<T> {
  /** Present (true) on the leader's noop entry, for which no transition states are reported. */
  readonly noop?: true;
}

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
  /** Index of the candidate's last log entry, for the up-to-date check of §5.4.1. */
  readonly lastLogIndex: number;
  /** Term of the candidate's last log entry. */
  readonly lastLogTerm: number;
}

/** Answers a {@link VoteRequest}. */
export interface VoteResponse extends MessageBase {
  readonly type: 'voteResponse';
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
}

/** Sends the leader's snapshot to a follower that needs entries the leader has compacted (§7). */
export interface SnapshotRequest<D> extends MessageBase {
  readonly type: 'snapshot';
  /** The leader's latest snapshot. */
  readonly snapshot: Snapshot<D>;
}

/** Every message replicas exchange: plain data that survives a JSON round-trip. */
export type Message<T, D = unknown> = VoteRequest | VoteResponse | AppendRequest<T> | AppendResponse | SnapshotRequest<D>;

export const voteRequest = (from: ReplicaId, term: number, lastLogIndex: number, lastLogTerm: number): VoteRequest =>
  ({ type: 'vote', from, term, lastLogIndex, lastLogTerm });
export const voteResponse = (from: ReplicaId, term: number, granted: boolean): VoteResponse =>
  ({ type: 'voteResponse', from, term, granted });
export const appendRequest = <T>(from: ReplicaId, term: number, prevLogIndex: number, prevLogTerm: number, entries: Entry<T>[], leaderCommit: number): AppendRequest<T> =>
  ({ type: 'append', from, term, prevLogIndex, prevLogTerm, entries, leaderCommit });
export const appendResponse = (from: ReplicaId, term: number, success: boolean, index: number, hintIndex = 0, hintTerm = 0): AppendResponse =>
  ({ type: 'appendResponse', from, term, success, index, hintIndex, hintTerm });
export const snapshotRequest = <D>(from: ReplicaId, term: number, snapshot: Snapshot<D>): SnapshotRequest<D> =>
  ({ type: 'snapshot', from, term, snapshot });

type FieldKind = 'count' | 'bool' | 'entries' | 'snapshot';
const count = (v: unknown): boolean => Number.isSafeInteger(v) && (v as number) >= 0;
const SHAPES: Record<string, Record<string, FieldKind>> = {
  vote: { lastLogIndex: 'count', lastLogTerm: 'count' },
  voteResponse: { granted: 'bool' },
  append: { prevLogIndex: 'count', prevLogTerm: 'count', entries: 'entries', leaderCommit: 'count' },
  appendResponse: { success: 'bool', index: 'count', hintIndex: 'count', hintTerm: 'count' },
  snapshot: { snapshot: 'snapshot' },
};

function isTransition(t: unknown): boolean {
  if (typeof t !== 'object' || t === null) return false;
  const id = (t as { id?: unknown }).id;
  return typeof id === 'string' || (typeof id === 'number' && Number.isFinite(id));
}

function validEntries(m: Record<string, unknown>): boolean {
  const entries = m.entries;
  if (!Array.isArray(entries)) return false;
  let index = m.prevLogIndex as number;
  let term = m.prevLogTerm as number;
  for (const e of entries as unknown[]) {
    if (typeof e !== 'object' || e === null) return false;
    const entry = e as Record<string, unknown>;
    // Indexes must follow prevLogIndex without gaps and terms never decrease nor pass the sender's term.
    if (entry.index !== ++index || !count(entry.term) || (entry.term as number) < term || (entry.term as number) > (m.term as number)) return false;
    if (!isTransition(entry.transition)) return false;
    term = entry.term as number;
  }
  return true;
}

function validSnapshot(s: unknown, term: number): boolean {
  if (typeof s !== 'object' || s === null) return false;
  const snap = s as Record<string, unknown>;
  return count(snap.lastIncludedIndex) && count(snap.lastIncludedTerm) && (snap.lastIncludedTerm as number) <= term && 'data' in snap;
}

/**
 * Whether `m` is a well-formed message from one of `senders`. Anything else (a wrong type, a
 * missing or mistyped field, an entry list with gaps) is dropped before it reaches the algorithm.
 */
export function isValidMessage<T, D>(m: unknown, senders: ReadonlySet<ReplicaId>): m is Message<T, D> {
  if (typeof m !== 'object' || m === null) return false;
  const msg = m as Record<string, unknown>;
  const shape = typeof msg.type === 'string' && Object.hasOwn(SHAPES, msg.type) ? SHAPES[msg.type] : undefined;
  if (!shape || !senders.has(msg.from as ReplicaId) || !count(msg.term)) return false;
  for (const field in shape) {
    const v = msg[field];
    const kind = shape[field];
    const ok = kind === 'count' ? count(v) : kind === 'bool' ? typeof v === 'boolean' : kind === 'entries' ? validEntries(msg) : validSnapshot(v, msg.term as number);
    if (!ok) return false;
  }
  return true;
}
