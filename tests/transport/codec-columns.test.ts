import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { appendRequest, appendResponse, type Entry } from '../../src/core/message.js';
import { isValidMessage } from '../../src/core/validate.js';
import { msgpackCodec } from '../../src/transport/codec.js';
import { toColumns } from '../../src/transport/compact-append.js';

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
});
