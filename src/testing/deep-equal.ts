import { isDeepStrictEqual } from 'node:util';

// The two comparisons the Storage conformance suite makes, with the semantics of the test-runner
// matchers it was first written with: `loose` is vitest's toEqual (a property whose value is
// undefined counts as absent, prototypes are not compared), `strict` is toStrictEqual (node's
// isDeepStrictEqual decides). Both also say where the first difference is, for the message.

/** Where two values first differ: a path like `entries[3].config`, and the values found there. */
export interface Difference {
  /** The path from the compared root (`''` for the root itself). */
  path: string;
  /** The value at `path` in what the storage gave. */
  actual: unknown;
  /** The value at `path` in what was expected. */
  expected: unknown;
  /** In a strict comparison, the side that lacks the property at `path` altogether, if one does. */
  absent?: 'actual' | 'expected';
}

/** Values compared by node's own deep equality rather than walked key by key. */
function isSpecial(v: object): boolean {
  return (
    v instanceof Date ||
    v instanceof RegExp ||
    v instanceof Map ||
    v instanceof Set ||
    v instanceof Error ||
    ArrayBuffer.isView(v) ||
    v instanceof ArrayBuffer
  );
}

function keysOf(v: object, strict: boolean): string[] {
  const own = Object.keys(v);
  return strict ? own : own.filter((k) => (v as Record<string, unknown>)[k] !== undefined);
}

function join(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return /^[A-Za-z_$][\w$]*$/.test(key) ? (path === '' ? key : `${path}.${key}`) : `${path}[${JSON.stringify(key)}]`;
}

function walk(actual: unknown, expected: unknown, strict: boolean, path: string): Difference | undefined {
  const here = { path, actual, expected };
  if (Object.is(actual, expected)) return undefined;
  if (typeof actual !== 'object' || typeof expected !== 'object' || actual === null || expected === null) return here;
  if (Array.isArray(actual) !== Array.isArray(expected)) return here;
  if (strict && Object.getPrototypeOf(actual) !== Object.getPrototypeOf(expected)) return here;
  if (isSpecial(actual) || isSpecial(expected)) return isDeepStrictEqual(actual, expected) ? undefined : here;
  const a = actual as Record<string, unknown>;
  const e = expected as Record<string, unknown>;
  if (Array.isArray(actual) && Array.isArray(expected)) {
    if (actual.length !== expected.length) {
      return { path: join(path, 'length'), actual: actual.length, expected: expected.length };
    }
    for (let i = 0; i < actual.length; i++) {
      // A hole on one side only.
      if (strict && i in actual !== i in expected) {
        return { path: join(path, i), actual: actual[i], expected: expected[i] };
      }
      const d = walk(actual[i], expected[i], strict, join(path, i));
      if (d) return d;
    }
    return undefined;
  }
  const keys = new Set([...keysOf(e, strict), ...keysOf(a, strict)]);
  for (const k of keys) {
    const at = join(path, k);
    // A key present on one side only (in strict mode, even with the value undefined).
    if (strict && Object.hasOwn(a, k) !== Object.hasOwn(e, k)) {
      return { path: at, actual: a[k], expected: e[k], absent: Object.hasOwn(a, k) ? 'expected' : 'actual' };
    }
    const d = walk(a[k], e[k], strict, at);
    if (d) return d;
  }
  return undefined;
}

/**
 * The first difference between `actual` and `expected`, or undefined if they are equal.
 * @param strict - false: vitest's toEqual; true: toStrictEqual (node's isDeepStrictEqual).
 * @param root - The name of the compared value, which starts the path (`snapshot`: `snapshot.members`).
 */
export function difference(actual: unknown, expected: unknown, strict: boolean, root = ''): Difference | undefined {
  const d = walk(actual, expected, strict, root);
  if (!strict || d) return d;
  // The walk found nothing, but node's comparison is the judge of strict equality (symbol keys...).
  return isDeepStrictEqual(actual, expected) ? undefined : { path: root, actual, expected };
}
