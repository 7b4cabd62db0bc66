// SharedLog: the Storage contract per group with several groups at once, group commit across
// groups (counted, not timed), checkpoints and removal across restarts, torn tails, corruption
// and the directory lock.
import { cp, readdir, readFile, rename, stat, truncate, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CorruptStorageError, SharedLog, StorageLockedError } from '../../src/file.js';
import { storageConformanceChecks } from '../../src/testing.js';
import { fixture, tempDir } from './file-harness.js';
import { SharedRound } from './shared-log-harness.js';
import { jsonStorageCodec } from '../../src/storage/codec.js';
import {
  decodeInnerRecords,
  encodeGroupRecord,
  F_GROUP_COLUMNS,
  knownInnerKind,
} from '../../src/storage/shared-log-format.js';
import { F_ENTRIES } from '../../src/storage/file-format.js';
import { entries, ModelStorage, prng, randomBatch, type Tr } from './workload.js';

const GROUPS = [0, 7, 42];

describe('Storage contract: SharedLog, per group, three groups at once', () => {
  for (const options of [{}, { segmentBytes: 4096 }]) {
    const names = storageConformanceChecks(() => ({ open: () => ({}) as never })).map((c) => c.name);
    names.forEach((name, i) => {
      it(`${name}${options.segmentBytes ? ' (4 KiB segments: checkpoints)' : ''}`, async () => {
        const round = await SharedRound.create(GROUPS, options);
        // A different seed per group: the random workloads differ but reopen at the same points.
        const runs = GROUPS.map((g) => storageConformanceChecks(() => round.fixture(g), { seed: 12345 + g })[i]!.run());
        const results = await Promise.allSettled(runs);
        for (const r of results) if (r.status === 'rejected') throw r.reason;
        expect(round.restarts).toBeGreaterThanOrEqual(i === 0 ? 0 : 1);
        if (options.segmentBytes && name.startsWith('matches the reference model'))
          expect(round.checkpoints).toBeGreaterThan(0);
      });
    });
  }
});

/** A log on a fresh directory, opened. */
async function openLog(dir: string, options = {}): Promise<SharedLog<Tr, unknown>> {
  const log = new SharedLog<Tr, unknown>(dir, options);
  await log.open();
  return log;
}

/** Runs `body` on a log in a fresh directory, then closes the log and removes the directory. */
async function withLog(body: (log: SharedLog<Tr, unknown>) => Promise<void>): Promise<void> {
  const { dir, remove } = await tempDir();
  const log = await openLog(dir);
  try {
    await body(log);
  } finally {
    await log.close().catch(() => undefined);
    await remove();
  }
}

describe('SharedLog group commit', () => {
  it('makes the saves of 32 groups in one tick durable with one write and one fdatasync', () =>
    withLog(async (log) => {
      const groups = Array.from({ length: 32 }, (_, g) => log.group(g));
      for (const g of groups) await g.load();
      const before = { ...log.stats };
      await Promise.all(
        groups.map((g, i) => g.save({ hardState: { term: 1, votedFor: i }, append: entries(1, 3, 1) })),
      );
      expect(log.stats.syncs - before.syncs).toBe(1);
      expect(log.stats.writes - before.writes).toBe(1);
      expect(log.stats.saves - before.saves).toBe(32);
    }));

  it('resolves a save with nothing in it without a write', () =>
    withLog(async (log) => {
      const g = log.group(3);
      await g.save({ append: [] });
      await g.save({});
      expect(log.stats).toEqual({ saves: 0, writes: 0, syncs: 0, checkpoints: 0 });
      expect(log.groupIds()).toEqual([]);
    }));

  it('coalesces the saves that arrive while a write is in flight into the next write', () =>
    withLog(async (log) => {
      const groups = Array.from({ length: 9 }, (_, g) => log.group(g));
      const before = { ...log.stats };
      const first = groups[0]!.save({ append: entries(1, 1, 1) });
      // The flush runs in this turn's check phase; its write completes in a later poll phase.
      await new Promise((r) => setImmediate(r));
      const rest = groups.slice(1).map((g) => g.save({ append: entries(1, 1, 1) }));
      let firstDone = false;
      void first.then(() => (firstDone = true));
      await Promise.all(rest);
      expect(firstDone).toBe(true);
      expect(log.stats.syncs - before.syncs).toBe(2);
      expect(log.stats.writes - before.writes).toBe(2);
    }));

  it('resolves no save before its write is durable: a failed write rejects every save in it and after it', () =>
    withLog(async (log) => {
      const [a, b] = [log.group(1), log.group(2)];
      await a.save({ append: entries(1, 2, 1) });
      // A codec that throws is a save that cannot be written: it rejects alone, at once.
      const bad = { index: 3, term: 1, kind: 'transition', transition: { id: 'x', pad: 1n } } as never;
      await expect(a.save({ append: [bad] })).rejects.toThrow();
      await b.save({ append: entries(1, 1, 1) });
      // Closing the segment under the log makes the next write fail.
      await (log as unknown as { active: { close(): Promise<void> } }).active.close();
      const saves = [a.save({ append: entries(3, 3, 1) }), b.save({ append: entries(2, 2, 1) })];
      const results = await Promise.allSettled(saves);
      expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
      await expect(b.save({ append: entries(2, 2, 1) })).rejects.toThrow();
    }));
});

describe('SharedLog across restarts', () => {
  it('rebuilds every group, drops removed ones, and deletes the segments a checkpoint covers', async () => {
    const { dir, remove } = await tempDir();
    const models = new Map<number, ModelStorage>();
    let log = await openLog(dir, { segmentBytes: 2048 });
    let checkpoints = 0;
    try {
      const rand = prng(99);
      for (let round = 1; round <= 120; round++) {
        // Every group saves once per round, all in the same tick; now and then one is removed.
        const ids = Array.from({ length: 6 }, (_, i) => i);
        const saves = ids.map((id) => {
          const model = models.get(id) ?? new ModelStorage();
          models.set(id, model);
          const batch = randomBatch(model, rand, round);
          model.apply(batch);
          return log.group(id).save(batch);
        });
        await Promise.all(saves);
        if (round % 25 === 0) {
          const gone = Math.floor(rand() * 6);
          await log.removeGroup(gone);
          models.delete(gone);
        }
        if (round % 40 === 0) {
          checkpoints += log.stats.checkpoints;
          await log.close();
          log = await openLog(dir, { segmentBytes: 2048 });
          expect(log.groupIds()).toEqual([...models.keys()].sort((a, b) => a - b));
          for (const [id, model] of models) expect(await log.group(id).load()).toEqual(model.state());
        }
      }
      expect(checkpoints).toBeGreaterThan(3);
      const segs = (await readdir(dir)).filter((n) => n.endsWith('.seg'));
      // Everything before the last checkpoint is gone.
      expect(segs.length).toBeLessThanOrEqual(2);
    } finally {
      await log.close();
      await remove();
    }
  });

  it('a removed group rejects saves through its old handles and starts empty under the same id', async () => {
    const { dir, remove } = await tempDir();
    let log = await openLog(dir);
    try {
      const old = log.group(5);
      await old.save({ hardState: { term: 3, votedFor: 1 }, append: entries(1, 4, 3) });
      await log.removeGroup(5);
      await expect(old.save({ append: entries(5, 5, 3) })).rejects.toThrow(/removed/);
      await log.group(5).save({ hardState: { term: 1, votedFor: undefined } });
      await log.close();
      log = await openLog(dir);
      expect(await log.group(5).load()).toEqual({ term: 1, votedFor: undefined, snapshot: undefined, entries: [] });
    } finally {
      await log.close();
      await remove();
    }
  });
});

/** Saves a batch per group in 10 group commits; returns the last segment file. */
async function tenWrites(dir: string): Promise<string> {
  const log = await openLog(dir);
  for (let w = 1; w <= 10; w++)
    await Promise.all(
      [1, 2, 3].map((g) => log.group(g).save({ hardState: { term: w, votedFor: g }, append: entries(w, w, w) })),
    );
  await log.close();
  const segs = (await readdir(dir)).filter((n) => n.endsWith('.seg')).sort();
  return path.join(dir, segs.at(-1)!);
}

describe('SharedLog recovery', () => {
  it('cuts a torn last write and keeps every write before it, for every group', async () => {
    const { dir, remove } = await tempDir();
    try {
      const file = await tenWrites(dir);
      const size = (await stat(file)).size;
      await truncate(file, size - 5);
      const warnings: string[] = [];
      const log = await openLog(dir, { onWarning: (m: string) => warnings.push(m) });
      expect(log.recovery.tornTailBytes).toBeGreaterThan(0);
      expect(warnings).toHaveLength(1);
      for (const g of [1, 2, 3]) {
        const state = await log.group(g).load();
        expect(state.term).toBe(9); // the 10th write, torn, is gone as a whole
        expect(state.entries).toEqual(Array.from({ length: 9 }, (_, i) => entries(i + 1, i + 1, i + 1)).flat());
      }
      // The log goes on after the cut.
      await log.group(1).save({ hardState: { term: 10, votedFor: 1 } });
      await log.close();
      const again = await openLog(dir);
      expect((await again.group(1).load()).term).toBe(10);
      await again.close();
    } finally {
      await remove();
    }
  });

  it('refuses to start on a damaged record that is not the tail, naming the file and offset', async () => {
    const { dir, remove } = await tempDir();
    try {
      const file = await tenWrites(dir);
      const buf = await readFile(file);
      buf[40] = buf[40]! ^ 0xff; // inside the first write's payload; nine valid writes follow
      await writeFile(file, buf);
      const log = new SharedLog<Tr, unknown>(dir);
      const err = (await log.open().catch((e: unknown) => e)) as CorruptStorageError;
      expect(err).toBeInstanceOf(CorruptStorageError);
      expect(err.file).toBe(file);
      expect(err.offset).toBe(0);
      expect(err.message).toMatch(/valid record follows/);
      // The lock was released: a fixed directory can be opened.
      buf[40] = buf[40]! ^ 0xff;
      await writeFile(file, buf);
      await (await openLog(dir)).close();
    } finally {
      await remove();
    }
  });

  it('refuses a damaged tail in a segment that is not the last, where no write can have been torn', async () => {
    const { dir, remove } = await tempDir();
    try {
      const first = await tenWrites(dir);
      // A second segment, as a roll whose checkpoint a crash tore leaves it; writes go on there.
      await writeFile(path.join(dir, 'log-0000000000000002.seg'), '');
      const log = await openLog(dir);
      await log.group(1).save({ hardState: { term: 11, votedFor: 1 } });
      await log.close();
      const size = (await stat(first)).size;
      await truncate(first, size - 5);
      const err = (await new SharedLog(dir).open().catch((e: unknown) => e)) as CorruptStorageError;
      expect(err).toBeInstanceOf(CorruptStorageError);
      expect(err.file).toBe(first);
    } finally {
      await remove();
    }
  });

  it('refuses a log whose first segments are gone when no segment left holds a checkpoint', async () => {
    const { dir, remove } = await tempDir();
    try {
      const file = await tenWrites(dir);
      await rename(file, path.join(dir, 'log-0000000000000002.seg'));
      const err = (await new SharedLog(dir).open().catch((e: unknown) => e)) as CorruptStorageError;
      expect(err).toBeInstanceOf(CorruptStorageError);
      expect(err.message).toMatch(/log-0000000000000001\.seg at offset 0: segment is missing/);
    } finally {
      await remove();
    }
  });

  it("writes a group's entries in columns, and reads them back", () => {
    const batch = { hardState: { term: 2, votedFor: 1 }, append: entries(5, 9, 2) };
    const record = encodeGroupRecord(7, batch, false, jsonStorageCodec);
    expect(record[4]! & F_GROUP_COLUMNS).toBe(F_GROUP_COLUMNS);
    expect(decodeInnerRecords(record, jsonStorageCodec)).toEqual([{ kind: 'group', group: 7, reset: false, batch }]);
    expect(knownInnerKind(0x80 | F_GROUP_COLUMNS)).toBe(false); // columns of no entries
    expect(knownInnerKind(0x80 | F_GROUP_COLUMNS | F_ENTRIES)).toBe(true);
  });

  it('reads a format-1 directory written by the previous version, then marks it format 2 and goes on', async () => {
    // tests/storage/fixtures/shared-format-1: written by tickraft at cedb0dc (three groups, a noop,
    // a configuration entry, an entry with a field of its own, a snapshot with members, a removed
    // group, a truncation; no checkpoint); shared-format-1-state.json is what that version loaded.
    const { dir, remove } = await tempDir();
    try {
      await cp(fixture('shared-format-1'), dir, { recursive: true });
      const expected = JSON.parse(await readFile(fixture('shared-format-1-state.json'), 'utf8')) as Record<
        string,
        { entries: unknown[] }
      >;
      let log = await openLog(dir);
      expect(log.groupIds()).toEqual([1, 2]);
      for (const id of [1, 2]) expect(await log.group(id).load()).toEqual(expected[id]);
      expect(await readFile(path.join(dir, 'FORMAT'), 'utf8')).toBe('tickraft SharedLog format 2\n');
      const more = entries(6, 8, 2);
      await log.group(1).save({ append: more });
      await log.close();
      log = await openLog(dir);
      expect((await log.group(1).load()).entries).toEqual([...expected[1]!.entries, ...more]);
      await log.close();
    } finally {
      await remove();
    }
  });

  it('refuses a FileStorage directory and a directory another SharedLog holds', async () => {
    const { dir, remove } = await tempDir();
    try {
      const log = await openLog(dir);
      await expect(new SharedLog(dir).open()).rejects.toBeInstanceOf(StorageLockedError);
      await log.close();
      await writeFile(path.join(dir, 'FORMAT'), 'tickraft FileStorage format 2\n');
      await expect(new SharedLog(dir).open()).rejects.toBeInstanceOf(CorruptStorageError);
    } finally {
      await remove();
    }
  });
});
