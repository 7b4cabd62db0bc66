// The wire form of an AppendEntries that carries entries: its fields in an array, the entries in
// columns (src/encoding/entry-columns.ts) rather than one map each. Entries are most of a
// follower's decoding and much of the leader's encoding; in columns the frame of 1,024 small
// entries is less than half the bytes and twice as fast (tests/bench/codec.ts).
import type { AppendRequest } from '../core/message.js';
import { fromEntryColumns, toEntryColumns } from '../encoding/entry-columns.js';

/** The first element of a compact append: no plain message encodes to an array. */
const TAG = 0;

/**
 * The columns of an append with entries: `[TAG, from, term, prevLogIndex, prevLogTerm,
 * leaderCommit, round, terms, kinds, transitions, configs, keys]`, the last five being the
 * entries' {@link toEntryColumns}. Undefined when the message is not such an append, or its
 * entries cannot go in columns (then it travels as a plain map).
 */
export function toColumns(message: unknown): unknown[] | undefined {
  const m = message as Partial<AppendRequest<unknown>> | null;
  if (typeof m !== 'object' || m === null || m.type !== 'append') return undefined;
  const entries = m.entries;
  if (!Array.isArray(entries) || entries.length === 0 || typeof m.prevLogIndex !== 'number') return undefined;
  const columns = toEntryColumns(entries, m.prevLogIndex + 1);
  if (columns === undefined) return undefined;
  return [TAG, m.from, m.term, m.prevLogIndex, m.prevLogTerm, m.leaderCommit, m.round, ...columns];
}

/** Whether a decoded value is a compact append (a plain message decodes to an object). */
export const isColumns = (value: unknown): value is unknown[] => Array.isArray(value) && value[0] === TAG;

/** A message as it travels: an append with entries in columns, anything else as it is. */
export const toWire = (message: unknown): unknown => toColumns(message) ?? message;

/** What a value that travelled stands for: columns rebuilt into an append (throws if malformed), or the value. */
export const fromWire = (value: unknown): unknown => (isColumns(value) ? fromColumns(value) : value);

/**
 * Rebuilds the AppendEntries of {@link toColumns}. Throws on columns of the wrong shape; the
 * fields it does not need to read (terms, ids) are left to the message validation that follows.
 */
export function fromColumns(columns: unknown[]): AppendRequest<unknown> {
  const [, from, term, prevLogIndex, prevLogTerm, leaderCommit, round, terms, kinds, transitions, configs, keys] =
    columns;
  const entries =
    columns.length === 12 && typeof prevLogIndex === 'number' && Array.isArray(terms) && terms.length > 0
      ? fromEntryColumns(prevLogIndex + 1, terms, kinds, transitions, configs, keys)
      : undefined;
  if (entries === undefined) throw new Error('malformed compact append');
  return {
    type: 'append',
    from,
    term,
    prevLogIndex,
    prevLogTerm,
    entries,
    leaderCommit,
    round,
  } as AppendRequest<unknown>;
}
