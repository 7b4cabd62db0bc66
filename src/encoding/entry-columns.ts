// A run of log entries as columns instead of one map per entry: the form in which both the
// transport (compact-append.ts) and FileStorage (file-format.ts) hand entries to a codec. As
// maps, every entry repeats the keys `index`, `term`, `kind` and `transition`, and its index is
// implied anyway (a run has no gaps). Transitions go one step further when they all have one
// shape (a state machine's commands mostly do): one column per key, the key names once. In
// columns a run of 1,024 small entries is less than half the bytes and encodes and decodes about
// twice as fast, in msgpack (tests/bench/codec.ts) as in JSON.
import type { Entry } from '../core/message.js';
import type { ReplicaId } from '../core/types.js';

/**
 * `[terms, kinds, transitions, configs, keys]`: `kinds` holds 0 (transition), 1 (noop) or 2
 * (config); `configs` lists `[position, members]` for the configuration entries; `keys` is 0
 * when `transitions` holds the transitions as they are, or their key names when it holds one
 * column per key ({@link byKey}).
 */
export type EntryColumns = [number[], number[], unknown[], [number, ReplicaId[]][], string[] | 0];

type Kind = Entry<unknown>['kind'];
// Switches, not lookups in an object: a hostile `kind` such as 'toString' must find nothing.
const kindCode = (kind: unknown): number =>
  kind === 'transition' ? 0 : kind === 'noop' ? 1 : kind === 'config' ? 2 : -1;
const kindOf = (code: unknown): Kind | undefined =>
  code === 0 ? 'transition' : code === 1 ? 'noop' : code === 2 ? 'config' : undefined;

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype;

/**
 * Whether a value keeps its meaning when it moves from an object's property into an array: JSON
 * leaves out a property whose value is undefined, a function or a symbol, but writes null for
 * one in an array.
 */
const columnSafe = (value: unknown): boolean =>
  value !== undefined && typeof value !== 'function' && typeof value !== 'symbol';

/**
 * Transitions as `[keys, columns]`, one column per key, when every one is a plain object with
 * the same keys in the same order and no value that {@link columnSafe} refuses; undefined
 * otherwise (they then go as they are). A key `__proto__` never goes in a column: rebuilt by
 * assignment it would set a prototype.
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
      const value = t[key];
      if (key !== keys[j] || !columnSafe(value)) return undefined;
      columns[j]![i] = value;
      j++;
    }
    if (j !== keys.length) return undefined;
  }
  return [keys, columns];
}

/**
 * The same string, as V8 keeps a property's name. A decoded key name is a fresh string, and a
 * literal keyed by one looks it up in V8's table of names for every object it builds (slower than
 * assigning by it); a name read back from a property is looked up once.
 */
const asPropertyName = (key: string): string => Object.keys({ [key]: 0 })[0]!;

/** The `n` transitions of {@link byKey}'s columns, or undefined if they are not such columns. */
function fromKeys(keys: unknown, columns: unknown, n: number): unknown[] | undefined {
  const ok =
    Array.isArray(keys) &&
    keys.every((k) => typeof k === 'string' && k !== '__proto__') &&
    new Set(keys).size === keys.length &&
    Array.isArray(columns) &&
    columns.length === keys.length &&
    columns.every((c) => Array.isArray(c) && c.length === n);
  if (!ok) return undefined;
  const names = (keys as string[]).map(asPropertyName);
  const values = columns as unknown[][];
  const transitions = new Array<unknown>(n);
  const [k0, k1, k2] = names as [string, string, string];
  const [c0, c1, c2] = values as [unknown[], unknown[], unknown[]];
  const m = names.length;
  for (let i = 0; i < n; i++) {
    // A literal with computed keys (property names, see asPropertyName) builds the objects about
    // twice as fast as assignments by a key that varies: 512 decoded two-key transitions rebuilt
    // into entries in 11-14 µs against 29-30 µs.
    if (m === 1) transitions[i] = { [k0]: c0[i] };
    else if (m === 2) transitions[i] = { [k0]: c0[i], [k1]: c1[i] };
    else if (m === 3) transitions[i] = { [k0]: c0[i], [k1]: c1[i], [k2]: c2[i] };
    else {
      const t: Record<string, unknown> = {};
      for (let j = 0; j < m; j++) t[names[j]!] = values[j]![i];
      transitions[i] = t;
    }
  }
  return transitions;
}

/**
 * The columns of `entries`, which must hold indexes `firstIndex`, `firstIndex + 1`, … Undefined
 * (they then go as maps) unless each is a plain object with exactly the fields the core gives an
 * entry, so that {@link fromEntryColumns} rebuilds every field as it was, and unless every
 * transition is a value that {@link columnSafe} accepts.
 */
export function toEntryColumns(entries: readonly unknown[], firstIndex: number): EntryColumns | undefined {
  const n = entries.length;
  const terms = new Array<number>(n);
  const kinds = new Array<number>(n);
  const transitions = new Array<unknown>(n);
  const configs: [number, ReplicaId[]][] = [];
  for (let i = 0; i < n; i++) {
    const e = entries[i] as Entry<unknown>;
    if (!isPlainObject(e) || e.index !== firstIndex + i || typeof e.term !== 'number') return undefined;
    const code = kindCode(e.kind);
    const isConfig = code === 2;
    if (code < 0 || isConfig !== (e.config !== undefined) || !columnSafe(e.transition)) return undefined;
    let fields = 0;
    for (const _ in e) fields++;
    // index, term, kind and transition (checked above, undefined excepted), and config if a config entry.
    if (fields !== (isConfig ? 5 : 4)) return undefined;
    terms[i] = e.term;
    kinds[i] = code;
    transitions[i] = e.transition;
    if (isConfig) configs.push([i, e.config as ReplicaId[]]);
  }
  const keyed = n > 0 ? byKey(transitions) : undefined;
  return [terms, kinds, keyed ? keyed[1] : transitions, configs, keyed ? keyed[0] : 0];
}

/**
 * Rebuilds the entries of {@link toEntryColumns}, from index `firstIndex`. Undefined if the
 * columns are not of its shape; the values in them (terms, transitions, members) are left to the
 * caller's own checks.
 */
export function fromEntryColumns(
  firstIndex: number,
  terms: unknown,
  kinds: unknown,
  transitions: unknown,
  configs: unknown,
  keys: unknown,
): Entry<unknown>[] | undefined {
  const n = Array.isArray(terms) ? terms.length : -1;
  const ok =
    n >= 0 &&
    Array.isArray(kinds) &&
    kinds.length === n &&
    Array.isArray(transitions) &&
    (keys !== 0 || transitions.length === n) &&
    Array.isArray(configs);
  if (!ok) return undefined;
  const termAt = terms as unknown[];
  const transitionAt = keys === 0 ? (transitions as unknown[]) : fromKeys(keys, transitions, n);
  if (transitionAt === undefined) return undefined;
  const memberLists = new Map<number, unknown>();
  for (const pair of configs as unknown[]) {
    if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== 'number') return undefined;
    memberLists.set(pair[0], pair[1]);
  }
  const entries = new Array<Entry<unknown>>(n);
  for (let i = 0; i < n; i++) {
    const kind = kindOf(kinds[i]);
    if (kind === undefined || (kind === 'config') !== memberLists.has(i)) return undefined;
    const index = firstIndex + i;
    // Built in the order the core builds entries, so that every entry has the same shape.
    entries[i] = (
      kind === 'config'
        ? { index, term: termAt[i], transition: transitionAt[i], kind, config: memberLists.get(i) }
        : { index, term: termAt[i], transition: transitionAt[i], kind }
    ) as Entry<unknown>;
  }
  return entries;
}
