import { afterEach, describe, expect, it } from 'vitest';
import type { CoreSnapshot, Entry } from '../../src/core/message.js';
import type { Storage } from '../../src/core/storage.js';
import { entries, ModelStorage, prng, randomBatch, type Tr } from './workload.js';

export { entries, entry, ModelStorage, prng, randomBatch, type Tr } from './workload.js';

/** A storage under test and how to get "the same storage after a crash". */
export interface StorageHarness {
  storage: Storage<Tr, unknown>;
  /** The storage as a restarted replica would find it (MemoryStorage: the same instance). */
  reopen(): Promise<Storage<Tr, unknown>>;
  /** Releases everything the harness created. */
  cleanup(): Promise<void>;
}


/**
 * The Storage contract, run against any implementation.
 * @param name - Shown in the test names.
 * @param make - Creates a fresh, empty storage.
 */
export function storageSuite(name: string, make: () => Promise<StorageHarness>): void {
  describe(`Storage contract: ${name}`, () => {
    let harness: StorageHarness | undefined;
    const open = async (): Promise<StorageHarness> => (harness = await make());
    afterEach(async () => {
      await harness?.cleanup();
      harness = undefined;
    });

    it('loads an empty state', async () => {
      const { storage } = await open();
      expect(await storage.load()).toEqual({ term: 0, votedFor: undefined, snapshot: undefined, entries: [] });
    });

    it('round-trips the hard state, with and without a vote', async () => {
      const h = await open();
      await h.storage.load();
      await h.storage.save({ hardState: { term: 3, votedFor: 2 } });
      let s = await (await h.reopen()).load();
      expect([s.term, s.votedFor]).toEqual([3, 2]);
      const again = await h.reopen();
      await again.load();
      await again.save({ hardState: { term: 4, votedFor: undefined } });
      s = await (await h.reopen()).load();
      expect(s.term).toBe(4);
      expect(s.votedFor).toBeUndefined();
      expect(s.entries).toEqual([]);
    });

    it('appends entries across batches', async () => {
      const h = await open();
      await h.storage.load();
      await h.storage.save({ append: entries(1, 3, 1) });
      await h.storage.save({ append: entries(4, 5, 1) });
      expect((await (await h.reopen()).load()).entries).toEqual(entries(1, 5, 1));
    });

    it('applies hardState, truncateFrom and append of one batch in that order', async () => {
      const h = await open();
      await h.storage.load();
      await h.storage.save({ hardState: { term: 1, votedFor: 1 }, append: entries(1, 5, 1) });
      await h.storage.save({ hardState: { term: 2, votedFor: 3 }, truncateFrom: 3, append: entries(3, 4, 2) });
      const s = await (await h.reopen()).load();
      expect(s).toEqual({ term: 2, votedFor: 3, snapshot: undefined, entries: [...entries(1, 2, 1), ...entries(3, 4, 2)] });
    });

    it('truncates without appending, and truncating everything works', async () => {
      const h = await open();
      await h.storage.load();
      await h.storage.save({ append: entries(1, 5, 1) });
      await h.storage.save({ truncateFrom: 4 });
      expect((await (await h.reopen()).load()).entries).toEqual(entries(1, 3, 1));
      const s = await h.reopen();
      await s.load();
      await s.save({ truncateFrom: 1, append: entries(1, 1, 2) });
      expect((await (await h.reopen()).load()).entries).toEqual(entries(1, 1, 2));
    });

    it('keeps a snapshot and returns only the entries after it', async () => {
      const h = await open();
      await h.storage.load();
      await h.storage.save({ append: entries(1, 10, 1) });
      const snap = { lastIncludedIndex: 4, lastIncludedTerm: 1, data: { sum: 10, list: [1, 2, 3, 4] } };
      await h.storage.save({ snapshot: snap });
      let s = await (await h.reopen()).load();
      expect(s.snapshot).toEqual(snap);
      expect(s.entries).toEqual(entries(5, 10, 1));
      // Then the log goes on after the snapshot.
      const r = await h.reopen();
      await r.load();
      await r.save({ append: entries(11, 12, 2) });
      s = await (await h.reopen()).load();
      expect(s.entries).toEqual([...entries(5, 10, 1), ...entries(11, 12, 2)]);
    });

    it('applies the snapshot after the append of the same batch', async () => {
      const h = await open();
      await h.storage.load();
      await h.storage.save({ append: entries(1, 3, 1) });
      await h.storage.save({ truncateFrom: 2, append: entries(2, 6, 2), snapshot: { lastIncludedIndex: 4, lastIncludedTerm: 2, data: 'four' } });
      const s = await (await h.reopen()).load();
      expect(s.snapshot).toEqual({ lastIncludedIndex: 4, lastIncludedTerm: 2, data: 'four' });
      expect(s.entries).toEqual(entries(5, 6, 2));
    });

    it('accepts a snapshot beyond the end of the log (installed from a leader)', async () => {
      const h = await open();
      await h.storage.load();
      await h.storage.save({ append: entries(1, 3, 1) });
      await h.storage.save({ hardState: { term: 5, votedFor: undefined }, snapshot: { lastIncludedIndex: 20, lastIncludedTerm: 4, data: null } });
      let s = await (await h.reopen()).load();
      expect(s.entries).toEqual([]);
      expect(s.snapshot?.lastIncludedIndex).toBe(20);
      const r = await h.reopen();
      await r.load();
      await r.save({ append: entries(21, 22, 5) });
      s = await (await h.reopen()).load();
      expect(s.entries).toEqual(entries(21, 22, 5));
    });

    it('keeps a snapshot whose data is undefined or falsy', async () => {
      const h = await open();
      await h.storage.load();
      for (const data of [undefined, null, 0, '', false]) {
        const s = await h.reopen();
        await s.load();
        await s.save({ snapshot: { lastIncludedIndex: 1, lastIncludedTerm: 1, data } });
        expect((await (await h.reopen()).load()).snapshot).toStrictEqual({ lastIncludedIndex: 1, lastIncludedTerm: 1, data });
      }
    });

    it('stores every field of an entry as given', async () => {
      const h = await open();
      await h.storage.load();
      const odd = [
        { index: 1, term: 1, kind: 'noop', transition: { id: 'noop' } },
        { index: 2, term: 1, kind: 'transition', transition: { id: 7, nested: { list: [1, 'two', null, { deep: true }] }, text: 'ünïcødé \u2028 "quoted"' } },
        { index: 3, term: 1, kind: 'config', transition: { id: 'cfg' }, config: [1, 2, 3] },
      ] as Entry<Tr>[];
      await h.storage.save({ append: odd });
      expect((await (await h.reopen()).load()).entries).toEqual(odd);
    });

    it('keeps every field the Storage types name (noop, config, members) through compactions and reopens', async () => {
      const h = await open();
      await h.storage.load();
      const noop = { id: 'noop' };
      const log: Entry<Tr>[] = [
        { index: 1, term: 1, kind: 'noop', transition: noop },
        { index: 2, term: 1, kind: 'transition', transition: { id: 'a' } },
        { index: 3, term: 1, kind: 'config', transition: noop, config: [1, 2, 3, 4] },
        { index: 4, term: 2, kind: 'noop', transition: noop },
        { index: 5, term: 2, kind: 'config', transition: noop, config: [1, 2, 3, 4, 5] },
        { index: 6, term: 2, kind: 'transition', transition: { id: 'b' } },
      ];
      await h.storage.save({ hardState: { term: 2, votedFor: 1 }, append: log });
      expect((await (await h.reopen()).load()).entries).toStrictEqual(log);
      // A compaction covers the first configuration entry: the snapshot carries its members.
      let s = await h.reopen();
      await s.load();
      const first: CoreSnapshot<unknown> = {
        lastIncludedIndex: 4, lastIncludedTerm: 2, data: { upTo: 4 }, members: [1, 2, 3, 4],
      };
      await s.save({ snapshot: first });
      let state = await (await h.reopen()).load();
      expect(state.snapshot).toStrictEqual(first);
      expect(state.entries).toStrictEqual(log.slice(4));
      // One batch appends a configuration entry and compacts past the one before it.
      s = await h.reopen();
      await s.load();
      const more: Entry<Tr>[] = [
        { index: 7, term: 2, kind: 'transition', transition: { id: 'c' } },
        { index: 8, term: 2, kind: 'config', transition: noop, config: [2, 3, 4, 5] },
      ];
      const second: CoreSnapshot<unknown> = {
        lastIncludedIndex: 7, lastIncludedTerm: 2, data: null, members: [1, 2, 3, 4, 5],
      };
      await s.save({ append: more, snapshot: second });
      state = await (await h.reopen()).load();
      expect(state).toStrictEqual({ term: 2, votedFor: 1, snapshot: second, entries: [more[1]] });
    });

    it('matches the reference model over many random batches, before and after reopening', async () => {
      const h = await open();
      await h.storage.load();
      const model = new ModelStorage();
      const rand = prng(12345);
      let storage = h.storage;
      for (let seq = 1; seq <= 300; seq++) {
        const batch = randomBatch(model, rand, seq);
        model.apply(batch);
        await storage.save(batch);
        if (seq % 100 === 0) {
          storage = await h.reopen();
          expect(await storage.load()).toEqual(model.state());
        }
      }
      expect(await (await h.reopen()).load()).toEqual(model.state());
    });
  });
}
