import { readdirSync } from 'node:fs';
import { readFile, stat, truncate, unlink, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  CorruptStorageError,
  SharedLog,
  StorageLockedError,
  jsonStorageCodec,
  type SharedLogOptions,
} from '../../src/file.js';
import { SHARED_KINDS, frame } from '../../src/storage/file-format.js';
import type { Entry, StorageBatch } from '../../src/index.js';
import { storageConformanceChecks, type StorageUnderTest } from '../../src/testing.js';
import { tempDir } from './file-harness.js';

type Log = SharedLog<{ id: string }, unknown>;
const entry = (index: number, term = 1): Entry<{ id: string }> => ({
  index,
  term,
  kind: 'transition',
  transition: { id: `e${index}` },
});

/**
 * The conformance fixture: group 7 of a SharedLog, reopened from disk at every open() (the
 * suite's restart), while group 8 saves beside it, so that their records interleave.
 */
async function sharedLogHarness(options: SharedLogOptions = {}): Promise<StorageUnderTest> {
  const { dir, remove } = await tempDir('tickraft-shared-');
  let log: Log | undefined;
  let noise = 0;
  return {
    open: async () => {
      await log?.close();
      log = await SharedLog.open(dir, options);
      const storage = log.storage(7);
      const other = log.storage(8);
      return {
        load: () => storage.load(),
        save: (batch: StorageBatch<unknown, unknown>) => {
          void other.save({ hardState: { term: ++noise, votedFor: undefined }, append: [entry(noise)] });
          return storage.save(batch as StorageBatch<{ id: string }, unknown>);
        },
      };
    },
    cleanup: async () => {
      await log?.close();
      await remove();
    },
  };
}

for (const [name, options] of [
  ['SharedLog (one group among others)', {}],
  ['SharedLog checkpointing every 2 KiB', { checkpointBytes: 2048 }],
] as const)
  describe(`${name}: the Storage conformance suite`, () => {
    for (const check of storageConformanceChecks(() => sharedLogHarness(options))) it(check.name, check.run);
  });

let cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

async function workspace() {
  const { dir, remove } = await tempDir('tickraft-shared-');
  const open: Log[] = [];
  cleanups.push(async () => {
    for (const l of open) await l.close();
    await remove();
  });
  return {
    dir,
    open: async (options: SharedLogOptions = {}) => {
      const log: Log = await SharedLog.open(dir, options);
      open.push(log);
      return log;
    },
    segments: () =>
      readdirSync(dir)
        .filter((n) => n.startsWith('wal-'))
        .sort(),
  };
}

describe('SharedLog', () => {
  it('writes the batches of many groups saved together in one flush (one write, one fdatasync)', async () => {
    const w = await workspace();
    const log = await w.open();
    await Promise.all(
      Array.from({ length: 50 }, (_, g) =>
        log.storage(g).save({ hardState: { term: 1, votedFor: 1 }, append: [entry(1), entry(2)] }),
      ),
    );
    expect(log.stats).toMatchObject({ flushes: 1, batches: 50 });
    // Saves that arrive while a flush is under way go together into the next one.
    const first = log.storage(1).save({ append: [entry(3)] });
    await new Promise((r) => setImmediate(r)); // the flush has started
    await Promise.all([first, ...[2, 3, 4].map((g) => log.storage(g).save({ append: [entry(3)] }))]);
    expect(log.stats.flushes).toBe(3);
  });

  it('recovers every group from one log, snapshots and drops included, across checkpoints', async () => {
    const w = await workspace();
    let log = await w.open({ checkpointBytes: 4096 });
    for (let i = 1; i <= 60; i++)
      await Promise.all(
        [1, 2, 3].map((g) => log.storage(g).save({ hardState: { term: g, votedFor: g }, append: [entry(i, g)] })),
      );
    await log.storage(2).save({ snapshot: { lastIncludedIndex: 50, lastIncludedTerm: 2, data: { n: 50 } } });
    await log.dropGroup(3);
    expect(log.stats.checkpoints).toBeGreaterThan(0);
    expect(w.segments()).toHaveLength(1); // the old segments went with each checkpoint
    await log.close();
    log = await w.open();
    expect(log.groupIds()).toEqual([1, 2]);
    const one = await log.storage(1).load();
    expect(one).toMatchObject({ term: 1, votedFor: 1, snapshot: undefined });
    expect(one.entries.map((e) => e.index)).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
    const two = await log.storage(2).load();
    expect(two.snapshot).toEqual({ lastIncludedIndex: 50, lastIncludedTerm: 2, data: { n: 50 } });
    expect(two.entries.map((e) => e.index)).toEqual([51, 52, 53, 54, 55, 56, 57, 58, 59, 60]);
    expect(await log.storage(3).load()).toEqual({ term: 0, votedFor: undefined, snapshot: undefined, entries: [] });
  });

  it('cuts a torn tail: the flush that never completed is lost, the ones before are kept', async () => {
    const w = await workspace();
    let log = await w.open();
    await log.storage(1).save({ hardState: { term: 3, votedFor: 2 }, append: [entry(1)] });
    await log.storage(1).save({ append: [entry(2)] });
    await log.close();
    const file = path.join(w.dir, w.segments()[0]!);
    const size = (await stat(file)).size;
    await truncate(file, size - 5); // the last record, half written
    log = await w.open();
    const s = await log.storage(1).load();
    expect(s.entries.map((e) => e.index)).toEqual([1]);
    expect(s.term).toBe(3);
    await log.storage(1).save({ append: [entry(2)] }); // and the log goes on after the cut
    await log.close();
    log = await w.open();
    expect((await log.storage(1).load()).entries.map((e) => e.index)).toEqual([1, 2]);
  });

  it('refuses to start on a damaged record followed by a valid one', async () => {
    const w = await workspace();
    const log = await w.open();
    for (let i = 1; i <= 3; i++) await log.storage(1).save({ append: [entry(i)] });
    await log.close();
    const file = path.join(w.dir, w.segments()[0]!);
    const buf = await readFile(file);
    buf[20]! ^= 0xff; // the header of the first batch (after the 16-byte checkpoint end)
    await writeFile(file, buf);
    await expect(w.open()).rejects.toBeInstanceOf(CorruptStorageError);
  });

  it('keeps the older segment when a checkpoint was cut short by a crash, and refuses a lone incomplete one', async () => {
    const w = await workspace();
    const log = await w.open();
    await log.storage(1).save({ append: [entry(1)] });
    await log.close();
    // A crash while the next segment's checkpoint was written: a group's record, no end.
    const payload = jsonStorageCodec.encode({ g: 1, h: [9, null], a: [] });
    const partial = frame(SHARED_KINDS[0] + 1, payload.length, (b, at) => b.set(payload, at));
    const second = path.join(w.dir, 'wal-0000000000000002.log');
    await writeFile(second, partial);
    const again = await w.open();
    expect(await again.storage(1).load()).toMatchObject({ term: 0, entries: [entry(1)] });
    expect(w.segments()).toEqual(['wal-0000000000000001.log']);
    await again.close();
    // With no older segment left, an incomplete checkpoint means lost data: refused.
    await writeFile(second, partial);
    await unlink(path.join(w.dir, 'wal-0000000000000001.log'));
    await expect(w.open()).rejects.toBeInstanceOf(CorruptStorageError);
  });

  it('locks its directory and fails for good after a failed write', async () => {
    const w = await workspace();
    const log = await w.open();
    await expect(w.open()).rejects.toBeInstanceOf(StorageLockedError);
    await log.storage(1).save({ append: [entry(1)] });
    const handle = (log as unknown as { handle: { close(): Promise<void> } }).handle;
    await handle.close(); // every write now fails
    const error = await log
      .storage(1)
      .save({ append: [entry(2)] })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    await expect(log.storage(2).save({ append: [entry(1)] })).rejects.toBe(error);
    await expect(log.storage(1).load()).rejects.toBe(error);
  });
});
