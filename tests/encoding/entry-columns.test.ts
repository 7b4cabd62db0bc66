import { describe, expect, it } from 'vitest';
import { fromEntryColumns, toEntryColumns } from '../../src/encoding/entry-columns.js';

/** Transitions with `width` keys, named so that their order is not alphabetical. */
function entriesOfWidth(width: number, count: number) {
  const names = ['id', 'zeta', 'alpha', 'mid', 'beta'].slice(0, width);
  return Array.from({ length: count }, (_, i) => ({
    index: 7 + i,
    term: 3,
    transition: Object.fromEntries(names.map((k, j) => [k, j === 0 ? i : `${k}${i}`])),
    kind: 'transition',
  }));
}

describe('entries in columns', () => {
  it.each([1, 2, 3, 4, 5])('rebuilds transitions of %i keys, values and key order as they were', (width) => {
    const entries = entriesOfWidth(width, 40);
    const columns = toEntryColumns(entries, 7)!;
    expect(columns[4]).toEqual(Object.keys(entries[0]!.transition)); // one column per key
    const back = fromEntryColumns(7, ...columns)!;
    expect(back).toEqual(entries);
    for (const [i, e] of back.entries()) {
      expect(Object.keys(e.transition as object)).toEqual(Object.keys(entries[i]!.transition));
      expect(Object.getPrototypeOf(e.transition)).toBe(Object.prototype);
    }
  });

  it('keeps transitions without keys, and an empty run, as they are', () => {
    const entries = [{ index: 1, term: 1, transition: {}, kind: 'noop' }];
    expect(fromEntryColumns(1, ...toEntryColumns(entries, 1)!)).toEqual(entries);
    expect(toEntryColumns([], 1)).toEqual([[], [], [], [], 0]);
    expect(fromEntryColumns(1, [], [], [], [], 0)).toEqual([]);
  });
});
