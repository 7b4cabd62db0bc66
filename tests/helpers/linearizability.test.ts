import { describe, expect, it } from 'vitest';
import { checkLinearizable, type HistoryOp } from './linearizability.js';
import { seededRandom } from '../../src/sim/random.js';

// Compact constructors. `ret` undefined = unknown outcome.
function put(client: number, key: string, value: string, call: number, ret?: number): HistoryOp {
  return ret === undefined
    ? { client, op: { kind: 'put', key, value }, call }
    : { client, op: { kind: 'put', key, value }, call, ret };
}
function del(client: number, key: string, call: number, ret?: number): HistoryOp {
  return ret === undefined
    ? { client, op: { kind: 'delete', key }, call }
    : { client, op: { kind: 'delete', key }, call, ret };
}
/** A completed delete that reports whether the key existed (HTTP 204 vs 404 in tickraft-kv). */
function delSaw(client: number, key: string, existed: boolean, call: number, ret: number): HistoryOp {
  return { client, op: { kind: 'delete', key }, call, ret, existed };
}
function get(client: number, key: string, output: string | undefined, call: number, ret?: number): HistoryOp {
  return ret === undefined
    ? { client, op: { kind: 'get', key }, call }
    : { client, op: { kind: 'get', key }, call, ret, output };
}

function expectOk(history: HistoryOp[]): void {
  const r = checkLinearizable(history);
  expect(r.explanation).toBeUndefined();
  expect(r.ok).toBe(true);
}
function expectViolation(history: HistoryOp[], key = 'x'): string {
  const r = checkLinearizable(history);
  expect(r.ok).toBe(false);
  expect(r.key).toBe(key);
  expect(r.explanation).toContain(JSON.stringify(key));
  return r.explanation ?? '';
}

/** The project's seeded PRNG, so a failure replays. */
const prng = seededRandom;

/**
 * Generates a linearizable history: each op gets a random interval and a true
 * linearization point inside it; ops are applied to a real map in point order.
 * Some ops get an unknown outcome; half of those never take effect.
 */
function generateHistory(
  seed: number,
  clients: number,
  opsPerClient: number,
  keys: string[],
  deleteAnswers = false,
): HistoryOp[] {
  const rand = prng(seed);
  const randInt = (n: number): number => Math.floor(rand() * n);
  const recs: Array<{ h: HistoryOp; at: number; applied: boolean }> = [];
  for (let c = 0; c < clients; c++) {
    let t = randInt(5);
    for (let i = 0; i < opsPerClient; i++) {
      const key = keys[randInt(keys.length)] as string;
      const r = rand();
      const call = t;
      const ret = call + 1 + randInt(8);
      const at = call + rand() * (ret - call);
      const unknown = rand() < 0.05;
      const applied = !unknown || rand() < 0.5;
      const h: HistoryOp =
        r < 0.4
          ? put(c, key, `v${c}.${i}`, call, ret)
          : r < 0.55
            ? del(c, key, call, ret)
            : get(c, key, undefined, call, ret);
      if (unknown) delete h.ret;
      recs.push({ h, at, applied });
      t = ret + randInt(3);
    }
  }
  recs.sort((a, b) => a.at - b.at);
  const map = new Map<string, string>();
  for (const { h, applied } of recs) {
    if (!applied) continue;
    if (h.op.kind === 'put') map.set(h.op.key, h.op.value);
    else if (h.op.kind === 'delete') {
      if (deleteAnswers && h.ret !== undefined) h.existed = map.has(h.op.key);
      map.delete(h.op.key);
    } else h.output = map.get(h.op.key);
  }
  return recs.map((r) => r.h);
}

/** Reference checker: tries every order of every subset of the unknown-outcome ops. */
function bruteForce(history: HistoryOp[]): boolean {
  const known = history.filter((h) => h.ret !== undefined);
  const unknownWrites = history.filter((h) => h.ret === undefined && h.op.kind !== 'get');
  const precedes = (a: HistoryOp, b: HistoryOp): boolean => a.ret !== undefined && a.ret < b.call;
  const search = (order: HistoryOp[], left: HistoryOp[]): boolean => {
    if (left.length === 0) {
      const map = new Map<string, string>();
      for (let i = 0; i < order.length; i++) {
        const h = order[i] as HistoryOp;
        for (let j = i + 1; j < order.length; j++) if (precedes(order[j] as HistoryOp, h)) return false;
        if (h.op.kind === 'put') map.set(h.op.key, h.op.value);
        else if (h.op.kind === 'delete') {
          if (h.ret !== undefined && h.existed !== undefined && h.existed !== map.has(h.op.key)) return false;
          map.delete(h.op.key);
        } else if (map.get(h.op.key) !== h.output) return false;
      }
      return true;
    }
    return left.some((h, i) =>
      search(
        [...order, h],
        left.filter((_, j) => j !== i),
      ),
    );
  };
  for (let mask = 0; mask < 1 << unknownWrites.length; mask++) {
    const chosen = unknownWrites.filter((_, i) => (mask >> i) & 1);
    if (search([], [...known, ...chosen])) return true;
  }
  return false;
}

describe('checkLinearizable', () => {
  it('accepts an empty history', () => {
    expect(checkLinearizable([])).toEqual({ ok: true, statesExplored: 0 });
  });

  it('accepts sequential put/get', () => {
    expectOk([
      get(1, 'x', undefined, 0, 1),
      put(1, 'x', 'a', 2, 3),
      get(2, 'x', 'a', 4, 5),
      put(2, 'x', 'b', 6, 7),
      get(1, 'x', 'b', 8, 9),
    ]);
  });

  it('rejects a stale read after a completed put', () => {
    const why = expectViolation([put(1, 'x', 'a', 0, 1), put(1, 'x', 'b', 2, 3), get(2, 'x', 'a', 4, 5)]);
    expect(why).toContain('c2 get("x") -> "a" [4, 5]');
    expect(why).toContain('put("x", "b")');
  });

  it('accepts a get concurrent with a put returning either old or new value', () => {
    const base = [put(1, 'x', 'old', 0, 1), put(1, 'x', 'new', 2, 6)];
    expectOk([...base, get(2, 'x', 'old', 3, 5)]);
    expectOk([...base, get(2, 'x', 'new', 3, 5)]);
    // Intervals touching at one instant count as concurrent.
    expectOk([put(1, 'x', 'a', 0, 4), get(2, 'x', 'a', 4, 5)]);
    expectOk([get(2, 'x', 'a', 0, 4), put(1, 'x', 'a', 4, 5)]);
  });

  it('rejects a get returning a value never written', () => {
    const why = expectViolation([put(1, 'x', 'a', 0, 1), get(1, 'x', 'a', 2, 3), get(2, 'x', 'zzz', 4, 5)]);
    expect(why).toContain('reads "zzz" but the value is "a"');
    expectViolation([get(2, 'x', 'zzz', 0, 1)]);
    expectViolation([put(1, 'x', 'a', 0, 10), get(2, 'x', 'zzz', 0, 10)]);
  });

  it('rejects reads ordered in real time that observe new then old', () => {
    expectViolation([
      put(1, 'x', 'old', 0, 1),
      put(1, 'x', 'new', 2, 20),
      get(2, 'x', 'new', 3, 5),
      get(3, 'x', 'old', 6, 8),
    ]);
    // The reverse order (old then new) is fine.
    expectOk([put(1, 'x', 'old', 0, 1), put(1, 'x', 'new', 2, 20), get(2, 'x', 'old', 3, 5), get(3, 'x', 'new', 6, 8)]);
  });

  it('handles delete semantics', () => {
    expectOk([
      put(1, 'x', 'a', 0, 1),
      del(1, 'x', 2, 3),
      get(2, 'x', undefined, 4, 5),
      put(2, 'x', 'b', 6, 7),
      get(1, 'x', 'b', 8, 9),
    ]);
    expectViolation([put(1, 'x', 'a', 0, 1), del(1, 'x', 2, 3), get(2, 'x', 'a', 4, 5)]);
    expectViolation([put(1, 'x', 'a', 0, 1), get(2, 'x', undefined, 2, 3)]);
    // A delete concurrent with a get: either outcome.
    expectOk([put(1, 'x', 'a', 0, 1), del(1, 'x', 2, 6), get(2, 'x', 'a', 3, 4)]);
    expectOk([put(1, 'x', 'a', 0, 1), del(1, 'x', 2, 6), get(2, 'x', undefined, 3, 4)]);
    // Unknown-outcome delete: may have happened...
    expectOk([put(1, 'x', 'a', 0, 1), del(1, 'x', 2), get(2, 'x', undefined, 10, 11)]);
    // ...or not.
    expectOk([put(1, 'x', 'a', 0, 1), del(1, 'x', 2), get(2, 'x', 'a', 10, 11)]);
    // But not before it was called.
    expectViolation([put(1, 'x', 'a', 0, 1), get(2, 'x', undefined, 2, 3), del(1, 'x', 4)]);
  });

  it('checks whether a delete found the key', () => {
    expectOk([put(1, 'x', 'a', 0, 1), delSaw(1, 'x', true, 2, 3), delSaw(2, 'x', false, 4, 5)]);
    // A delete that finds nothing after a completed put: the put was lost.
    const why = expectViolation([put(1, 'x', 'a', 0, 1), delSaw(2, 'x', false, 2, 3)]);
    expect(why).toContain('c2 delete("x") -> absent [2, 3]: finds the key absent');
    // One that finds a key nobody wrote.
    expectViolation([delSaw(1, 'x', true, 0, 1)]);
    // Two sequential deletes cannot both find it.
    expectViolation([put(1, 'x', 'a', 0, 1), delSaw(1, 'x', true, 2, 3), delSaw(2, 'x', true, 4, 5)]);
    // Concurrent with the put: either answer.
    expectOk([put(1, 'x', 'a', 0, 4), delSaw(2, 'x', false, 1, 2)]);
    expectOk([put(1, 'x', 'a', 0, 4), delSaw(2, 'x', true, 1, 2)]);
    // An unknown-outcome put (never read) explains a delete that found the key.
    expectOk([put(1, 'x', 'a', 0), delSaw(2, 'x', true, 5, 6)]);
    // A value no get returns still counts as present.
    expectViolation([
      put(1, 'x', 'a', 0, 1),
      put(1, 'x', 'b', 2, 3),
      get(2, 'x', 'b', 4, 5),
      put(1, 'x', 'c', 6, 7),
      delSaw(2, 'x', false, 8, 9),
    ]);
    // An unknown-outcome delete's answer is not known, so it is not checked.
    expectOk([put(1, 'x', 'a', 0, 1), { client: 2, op: { kind: 'delete', key: 'x' }, call: 2, existed: false }]);
  });

  it('accepts an unknown-outcome put that later appears in a get', () => {
    expectOk([put(1, 'x', 'a', 0, 1), put(1, 'x', 'b', 2), get(2, 'x', 'b', 50, 51)]);
    // Even if it "takes effect" long after the client gave up.
    expectOk([put(1, 'x', 'b', 2), put(1, 'x', 'c', 10, 11), get(2, 'x', 'c', 12, 13), get(2, 'x', 'b', 20, 21)]);
  });

  it('accepts an unknown-outcome put whose value never appears', () => {
    expectOk([put(1, 'x', 'a', 0, 1), put(1, 'x', 'b', 2), get(2, 'x', 'a', 50, 51), get(3, 'x', 'a', 60, 61)]);
  });

  it('rejects an unknown-outcome put observed then unobserved by sequential reads', () => {
    expectViolation([put(1, 'x', 'a', 0, 1), put(1, 'x', 'b', 2), get(2, 'x', 'b', 5, 6), get(2, 'x', 'a', 7, 8)]);
  });

  it('rejects a read of an unknown-outcome put before its call', () => {
    expectViolation([get(2, 'x', 'b', 0, 1), put(1, 'x', 'b', 2)]);
  });

  it('ignores a get with unknown outcome', () => {
    expectOk([put(1, 'x', 'a', 0, 1), get(2, 'x', 'bogus', 2)]);
  });

  it('checks keys independently and reports the violating key', () => {
    const history = [
      put(1, 'x', 'a', 0, 1),
      put(2, 'y', 'a', 0, 1),
      get(1, 'x', 'a', 2, 3),
      put(1, 'y', 'b', 4, 5),
      get(2, 'y', 'a', 6, 7), // stale on y
      get(3, 'x', 'a', 6, 7),
    ];
    const r = checkLinearizable(history);
    expect(r.ok).toBe(false);
    expect(r.key).toBe('y');
    expect(r.explanation).toMatch(/^key "y"/);
    expect(r.explanation).not.toContain('"x"');
    // Same value names on different keys do not interfere.
    expectOk([put(1, 'x', 'a', 0, 1), put(2, 'y', 'b', 0, 1), get(1, 'x', 'a', 2, 3), get(2, 'y', 'b', 2, 3)]);
  });

  it('passes a large generated linearizable history within limits', () => {
    const history = generateHistory(12345, 8, 300, ['a', 'b', 'c']);
    expect(history.length).toBe(2400);
    const r = checkLinearizable(history, { maxStates: 200_000 });
    expect(r.explanation).toBeUndefined();
    expect(r.ok).toBe(true);
    expect(r.statesExplored).toBeGreaterThan(0);
  });

  it('passes generated histories for several seeds, with high contention on one key', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const r = checkLinearizable(generateHistory(seed, 6, 60, ['k']));
      expect(r.explanation).toBeUndefined();
      expect(r.ok).toBe(true);
    }
  });

  it('passes generated histories where deletes report whether they found the key', () => {
    for (let seed = 1; seed <= 40; seed++) {
      const r = checkLinearizable(generateHistory(seed, 6, 40, ['k'], true));
      expect({ seed, explanation: r.explanation }).toEqual({ seed, explanation: undefined });
    }
  });

  it('rejects a generated history with one corrupted read', () => {
    const history = generateHistory(777, 8, 300, ['a', 'b', 'c']);
    const victim = history.find((h) => h.op.kind === 'get' && h.ret !== undefined && h.op.key === 'b' && h.call > 500);
    expect(victim).toBeDefined();
    (victim as HistoryOp).output = 'never-written';
    const r = checkLinearizable(history);
    expect(r.ok).toBe(false);
    expect(r.key).toBe('b');
    expect(r.explanation).toContain('never-written');
  });

  it('agrees with a brute-force checker on small random histories', () => {
    const rand = prng(42);
    const randInt = (n: number): number => Math.floor(rand() * n);
    const values = [undefined, 'a', 'b'];
    let oks = 0;
    for (let round = 0; round < 400; round++) {
      const history: HistoryOp[] = [];
      const n = 2 + randInt(5);
      for (let i = 0; i < n; i++) {
        const key = rand() < 0.8 ? 'x' : 'y';
        const call = randInt(8);
        const ret = rand() < 0.25 ? undefined : call + randInt(5);
        const r = rand();
        history.push(
          r < 0.4
            ? put(i, key, rand() < 0.5 ? 'a' : 'b', call, ret)
            : r < 0.55
              ? del(i, key, call, ret)
              : r < 0.65 && ret !== undefined
                ? delSaw(i, key, rand() < 0.5, call, ret)
                : get(i, key, values[randInt(3)], call, ret),
        );
      }
      const expected = bruteForce(history);
      const actual = checkLinearizable(history);
      expect({ history, ok: actual.ok }).toEqual({ history, ok: expected });
      if (expected) oks++;
    }
    // Both outcomes are well represented.
    expect(oks).toBeGreaterThan(80);
    expect(oks).toBeLessThan(320);
  });

  it('throws when maxStates is exceeded', () => {
    const seq = [put(1, 'x', 'a', 0, 1), put(1, 'x', 'b', 2, 3), put(1, 'x', 'c', 4, 5), get(1, 'x', 'c', 6, 7)];
    expect(() => checkLinearizable(seq, { maxStates: 3 })).toThrow(/too large/);
    expect(checkLinearizable(seq, { maxStates: 4 })).toEqual({ ok: true, statesExplored: 4 });
    // Exponential case: 16 fully concurrent puts, each read by a concurrent
    // get, then an impossible read: every subset of the puts gets explored.
    const wide: HistoryOp[] = [];
    for (let i = 0; i < 16; i++) wide.push(put(i, 'x', `v${i}`, 0, 10), get(100 + i, 'x', `v${i}`, 0, 10));
    wide.push(get(99, 'x', 'nope', 11, 12));
    expect(() => checkLinearizable(wide, { maxStates: 10_000 })).toThrow(/history too large/);
  });

  it('rejects malformed ops', () => {
    expect(() => checkLinearizable([put(1, 'x', 'a', 5, 4)])).toThrow(/before it is called/);
  });
});
