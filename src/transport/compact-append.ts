// The wire form of an AppendEntries that carries entries: columns instead of one map per entry.
// As maps, every entry repeats the keys `index`, `term`, `kind` and `transition`, and its index
// is implied anyway (entries follow `prevLogIndex` without gaps). In columns the frame of 1,024
// small entries is less than half the bytes and encodes and decodes about twice as fast
// (tests/bench/codec.ts), which is most of a follower's work and much of the leader's.
import type { AppendRequest, Entry } from '../core/message.js';
import type { ReplicaId } from '../core/types.js';

/** The first element of a compact append: no plain message encodes to an array. */
const TAG = 0;
type Kind = Entry<unknown>['kind'];
// Switches, not lookups in an object: a hostile `kind` such as 'toString' must find nothing.
const kindCode = (kind: unknown): number =>
  kind === 'transition' ? 0 : kind === 'noop' ? 1 : kind === 'config' ? 2 : -1;
const kindOf = (code: unknown): Kind | undefined =>
  code === 0 ? 'transition' : code === 1 ? 'noop' : code === 2 ? 'config' : undefined;

/**
 * The columns of an append with entries: `[TAG, from, term, prevLogIndex, prevLogTerm,
 * leaderCommit, round, terms, kinds, transitions, configs]`, where `configs` lists
 * `[position, members]` for the configuration entries. Undefined when the message is not such an
 * append, or an entry does not have the shape the core makes (then it travels as a plain map).
 */
export function toColumns(message: unknown): unknown[] | undefined {
  const m = message as Partial<AppendRequest<unknown>> | null;
  if (typeof m !== 'object' || m === null || m.type !== 'append') return undefined;
  const entries = m.entries;
  if (!Array.isArray(entries) || entries.length === 0 || typeof m.prevLogIndex !== 'number') return undefined;
  const n = entries.length;
  const terms = new Array<number>(n);
  const kinds = new Array<number>(n);
  const transitions = new Array<unknown>(n);
  const configs: [number, ReplicaId[]][] = [];
  for (let i = 0; i < n; i++) {
    const e = entries[i]!;
    const code = kindCode(e.kind);
    if (e.index !== m.prevLogIndex + 1 + i || code < 0) return undefined;
    if ((code === 2) !== (e.config !== undefined)) return undefined;
    terms[i] = e.term;
    kinds[i] = code;
    transitions[i] = e.transition;
    if (e.config !== undefined) configs.push([i, e.config]);
  }
  return [
    TAG,
    m.from,
    m.term,
    m.prevLogIndex,
    m.prevLogTerm,
    m.leaderCommit,
    m.round,
    terms,
    kinds,
    transitions,
    configs,
  ];
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
  const [, from, term, prevLogIndex, prevLogTerm, leaderCommit, round, terms, kinds, transitions, configs] = columns;
  const n = Array.isArray(terms) ? terms.length : -1;
  const termAt = terms as unknown[];
  const transitionAt = transitions as unknown[];
  const ok =
    columns.length === 11 &&
    typeof prevLogIndex === 'number' &&
    n > 0 &&
    Array.isArray(kinds) &&
    kinds.length === n &&
    Array.isArray(transitions) &&
    transitions.length === n &&
    Array.isArray(configs);
  if (!ok) throw new Error('malformed compact append');
  const memberLists = new Map<number, unknown>();
  for (const pair of configs as unknown[]) {
    if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== 'number')
      throw new Error('malformed compact append');
    memberLists.set(pair[0], pair[1]);
  }
  const entries = new Array<Entry<unknown>>(n);
  for (let i = 0; i < n; i++) {
    const kind = kindOf(kinds[i]);
    if (kind === undefined || (kind === 'config') !== memberLists.has(i)) throw new Error('malformed compact append');
    const index = prevLogIndex + 1 + i;
    // Built in the order the core builds entries, so that every entry has the same shape.
    entries[i] = (
      kind === 'config'
        ? { index, term: termAt[i], transition: transitionAt[i], kind, config: memberLists.get(i) }
        : { index, term: termAt[i], transition: transitionAt[i], kind }
    ) as Entry<unknown>;
  }
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
