import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { appendRequest, appendResponse, type Entry } from '../../src/core/message.js';
import { isValidMessage } from '../../src/core/validate.js';
import { msgpackCodec } from '../../src/transport/codec.js';
import { toColumns } from '../../src/transport/compact-append.js';
import { seededRandom } from '../../src/sim/random.js';

interface Tx {
  id: number | string;
  v?: string;
}
const NOOP: Tx = { id: 'noop' };
const senders = new Set([1, 2, 3]);
const packr = new Packr({ useRecords: false, mapsAsObjects: true });

const transition = (index: number, term: number, id: number): Entry<Tx> => ({
  index,
  term,
  transition: { id, v: `v${id}` },
  kind: 'transition',
});
const withEntries = (prevLogIndex: number, entries: Entry<Tx>[]) =>
  appendRequest<Tx>({ from: 1, term: 5, prevLogIndex, prevLogTerm: 3, entries, leaderCommit: 9, round: 2 });
const mixed = withEntries(10, [
  { index: 11, term: 4, transition: NOOP, kind: 'noop' },
  transition(12, 4, 100),
  { index: 13, term: 5, transition: NOOP, kind: 'config', config: [1, 2, 3, 4] },
  transition(14, 5, 101),
]);

describe('the msgpack codec sends entries in columns', () => {
  it('gives back every kind of entry exactly, in fewer bytes than maps', () => {
    const bytes = msgpackCodec.encode(mixed);
    const decoded = msgpackCodec.decode(bytes);
    expect(decoded).toEqual(mixed);
    expect(Object.keys(decoded as object)).toEqual(Object.keys(mixed));
    for (const [i, e] of (decoded as typeof mixed).entries.entries())
      expect(Object.keys(e)).toEqual(Object.keys(mixed.entries[i]!));
    expect(isValidMessage(decoded, senders)).toBe(true);
    const big = withEntries(
      0,
      Array.from({ length: 512 }, (_, i) => transition(i + 1, 5, i)),
    );
    expect(msgpackCodec.encode(big).byteLength).toBeLessThan(packr.pack(big).byteLength / 2);
  });

  it('sends every other message, and an append it cannot put in columns, as a map', () => {
    const heartbeat = withEntries(10, []);
    const answer = appendResponse({ from: 2, term: 5, success: true, index: 14 });
    const gap = withEntries(10, [transition(11, 4, 1), transition(13, 4, 2)]);
    const odd = withEntries(10, [{ index: 11, term: 4, transition: NOOP, kind: 'toString' } as unknown as Entry<Tx>]);
    for (const m of [heartbeat, answer, gap, odd]) {
      expect(toColumns(m)).toBeUndefined();
      expect(msgpackCodec.decode(msgpackCodec.encode(m))).toEqual(m);
    }
  });

  it('throws on columns of the wrong shape, and what it rebuilds is still validated', () => {
    const good = toColumns(mixed)!;
    const broken: unknown[][] = [
      good.slice(0, 10), // a column missing
      good.map((v, i) => (i === 8 ? [0, 1] : v)), // fewer kinds than terms
      good.map((v, i) => (i === 8 ? [1, 0, 7, 0] : v)), // an unknown kind
      good.map((v, i) => (i === 8 ? [1, 0, 'toString', 0] : v)), // a kind that names a prototype key
      good.map((v, i) => (i === 10 ? [] : v)), // a config entry without its members
      good.map((v, i) => (i === 10 ? [[0, [1]]] : v)), // members on an entry that is not a config
      good.map((v, i) => (i === 3 ? 'ten' : v)), // no prevLogIndex to count from
    ];
    for (const columns of broken) expect(() => msgpackCodec.decode(packr.pack(columns))).toThrow(/malformed/);
    const badTerms = good.map((v, i) => (i === 7 ? [4, 4, 6, 5] : v)); // a term above the sender's
    const rebuilt = msgpackCodec.decode(packr.pack(badTerms));
    expect(isValidMessage(rebuilt, senders)).toBe(false);
  });

  it('sends transitions of one shape one column per key, and any other transitions as they are', () => {
    const shaped = withEntries(0, [transition(1, 5, 1), transition(2, 5, 2), transition(3, 5, 3)]);
    const columns = toColumns(shaped)!;
    expect(columns[11]).toEqual(['id', 'v']);
    expect(columns[9]).toEqual([
      [1, 2, 3],
      ['v1', 'v2', 'v3'],
    ]);
    const decoded = msgpackCodec.decode(msgpackCodec.encode(shaped)) as typeof shaped;
    expect(decoded).toEqual(shaped);
    for (const e of decoded.entries) expect(Object.keys(e.transition)).toEqual(['id', 'v']);
    class Command {
      constructor(readonly id: number) {}
    }
    const unlike: unknown[][] = [
      [
        { id: 1, v: 'a' },
        { v: 'b', id: 2 },
      ], // the same keys in another order
      [{ id: 1, v: 'a' }, { id: 2 }], // a key fewer
      [{ id: 1 }, new Command(2)], // not a plain object
    ];
    for (const transitions of unlike) {
      const m = withEntries(
        0,
        transitions.map((t, i) => ({ index: i + 1, term: 5, transition: t as Tx, kind: 'transition' })),
      );
      expect(toColumns(m)![11]).toBe(0);
      const back = msgpackCodec.decode(msgpackCodec.encode(m)) as typeof m;
      expect(back.entries.map((e) => ({ ...e.transition }))).toEqual(transitions.map((t) => ({ ...(t as object) })));
    }
    expect(toColumns(mixed)![11]).toBe(0); // the noop and the commands differ
    // An own `__proto__` key (JSON.parse makes one) keeps its transitions maps, which msgpackr decodes safely.
    const parsed = [1, 2].map((id) => JSON.parse(`{"id": ${id}, "__proto__": {"polluted": 1}}`) as Tx);
    const hostile = withEntries(
      0,
      parsed.map((t, i) => ({ index: i + 1, term: 5, transition: t, kind: 'transition' })),
    );
    expect(toColumns(hostile)![11]).toBe(0);
    msgpackCodec.decode(msgpackCodec.encode(hostile));
    expect(({} as { polluted?: number }).polluted).toBeUndefined();
  });

  it('throws on key columns of the wrong shape', () => {
    const good = toColumns(withEntries(0, [transition(1, 5, 1), transition(2, 5, 2)]))!;
    const keyed = (keys: unknown, columns: unknown) => good.map((v, i) => (i === 11 ? keys : i === 9 ? columns : v));
    const broken: unknown[][] = [
      keyed(
        ['id', '__proto__'],
        [
          [1, 2],
          [{}, {}],
        ],
      ), // a key that would set a prototype
      keyed(
        ['id', 'id'],
        [
          [1, 2],
          [3, 4],
        ],
      ), // a key twice
      keyed(
        ['id', 7],
        [
          [1, 2],
          [3, 4],
        ],
      ), // a key that is not a string
      keyed(['id', 'v'], [[1, 2]]), // a column missing
      keyed(['id', 'v'], [[1, 2], ['a']]), // a column too short
      keyed('id', [[1, 2]]), // keys that are not a list
    ];
    for (const columns of broken) expect(() => msgpackCodec.decode(packr.pack(columns))).toThrow(/malformed/);
    expect(({} as { v?: unknown }).v).toBeUndefined();
  });

  it('decodes mutated columns to a message that validation judges, or throws its own error (2,000 seeded mutations)', () => {
    const seed = 20261203;
    const random = seededRandom(seed);
    const pick = <V>(list: readonly V[]): V => list[Math.floor(random() * list.length)]!;
    const hostile = () =>
      pick<unknown>([undefined, null, 0, -1, 1.5, 2 ** 60, 'x', '__proto__', 'toString', [], [0], [[]], {}, { id: 1 }]);
    const shaped = withEntries(0, [transition(1, 5, 1), transition(2, 5, 2), transition(3, 5, 3)]);
    const valid = [toColumns(mixed)!, toColumns(shaped)!];
    // Replaces one value, at the top or inside one of the columns, by something of any type.
    const mutate = (columns: unknown[]): unknown[] => {
      const copy = structuredClone(columns);
      const at = Math.floor(random() * copy.length);
      const inner = copy[at];
      if (Array.isArray(inner) && inner.length > 0 && random() < 0.7) {
        const k = Math.floor(random() * inner.length);
        const deeper = inner[k] as unknown;
        if (Array.isArray(deeper) && deeper.length > 0 && random() < 0.5)
          deeper[Math.floor(random() * deeper.length)] = hostile();
        else inner[k] = hostile();
      } else copy[at] = hostile();
      return copy;
    };
    let thrown = 0;
    for (let i = 0; i < 2_000; i++) {
      const bytes = packr.pack(mutate(pick(valid)));
      let decoded: unknown;
      try {
        decoded = msgpackCodec.decode(bytes);
      } catch (error) {
        thrown++;
        expect((error as Error).message, `seed ${seed}, mutation ${i}`).toMatch(/^malformed compact append$/);
        continue;
      }
      expect(typeof isValidMessage(decoded, senders), `seed ${seed}, mutation ${i}`).toBe('boolean');
    }
    expect(thrown).toBeGreaterThan(100);
    expect(thrown).toBeLessThan(2_000);
    expect(Object.keys(Object.prototype)).toEqual([]);
    expect(({} as { polluted?: unknown }).polluted).toBeUndefined();
  });
});
