// The wire form of an AppendEntries that carries entries: columns instead of one map per entry.
// As maps, every entry repeats the keys `index`, `term`, `kind` and `transition`, and its index
// is implied anyway (entries follow `prevLogIndex` without gaps). In columns the frame of 1,024
// small entries is less than half the bytes and encodes and decodes about twice as fast
// (tests/bench/codec.ts), which is most of a follower's work and much of the leader's. The
// transitions themselves go one step further when they all have one shape (a state machine's
// commands mostly do): one column per key, the key names sent once.
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

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype;

/**
 * Transitions as `[keys, columns]`, one column per key, when every one is a plain object with
 * the same keys in the same order; undefined otherwise (they then travel as they are). A key
 * `__proto__` never goes in a column: rebuilt by assignment it would set a prototype.
 */
function byKey(transitions: unknown[]): [string[], unknown[][]] | undefined {
  const first = transitions[0];
  if (!isPlainObject(first)) return undefined;
  const keys = Object.keys(first);
  if (keys.includes('__proto__')) return undefined;
  const columns = keys.map(() => new Array<unknown>(transitions.length));
  for (let i = 0; i < transitions.length; i++) {
    const t = transitions[i];
    if (!isPlainObject(t)) return undefined;
    let j = 0;
    for (const key in t) {
      if (key !== keys[j]) return undefined;
      columns[j]![i] = t[key];
      j++;
    }
    if (j !== keys.length) return undefined;
  }
  return [keys, columns];
}

/** The `n` transitions of {@link byKey}'s columns; throws if they are not such columns. */
function fromKeys(keys: unknown, columns: unknown, n: number): unknown[] {
  const ok =
    Array.isArray(keys) &&
    keys.every((k) => typeof k === 'string' && k !== '__proto__') &&
    new Set(keys).size === keys.length &&
    Array.isArray(columns) &&
    columns.length === keys.length &&
    columns.every((c) => Array.isArray(c) && c.length === n);
  if (!ok) throw new Error('malformed compact append');
  const names = keys as string[];
  const values = columns as unknown[][];
  const transitions = new Array<unknown>(n);
  for (let i = 0; i < n; i++) {
    const t: Record<string, unknown> = {};
    for (let j = 0; j < names.length; j++) t[names[j]!] = values[j]![i];
    transitions[i] = t;
  }
  return transitions;
}

/**
 * The columns of an append with entries: `[TAG, from, term, prevLogIndex, prevLogTerm,
 * leaderCommit, round, terms, kinds, transitions, configs, keys]`, where `configs` lists
 * `[position, members]` for the configuration entries, and `keys` is 0 when `transitions` holds
 * the transitions as they are, or their key names when it holds one column per key
 * ({@link byKey}). Undefined when the message is not such an append, or an entry does not have
 * the shape the core makes (then it travels as a plain map).
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
  const keyed = byKey(transitions);
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
    keyed ? keyed[1] : transitions,
    configs,
    keyed ? keyed[0] : 0,
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
  const [, from, term, prevLogIndex, prevLogTerm, leaderCommit, round, terms, kinds, transitions, configs, keys] =
    columns;
  const n = Array.isArray(terms) ? terms.length : -1;
  const termAt = terms as unknown[];
  const ok =
    columns.length === 12 &&
    typeof prevLogIndex === 'number' &&
    n > 0 &&
    Array.isArray(kinds) &&
    kinds.length === n &&
    Array.isArray(transitions) &&
    (keys !== 0 || transitions.length === n) &&
    Array.isArray(configs);
  if (!ok) throw new Error('malformed compact append');
  const transitionAt = keys === 0 ? (transitions as unknown[]) : fromKeys(keys, transitions, n);
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
