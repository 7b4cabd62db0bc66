import { spawn } from 'node:child_process';
import { appendFile, cp, readdir, readFile, stat, truncate, unlink, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { crc32, tableCrc32 } from '../../src/storage/crc32.js';
import {
  CorruptStorageError,
  FileStorage,
  StorageFormatError,
  StorageLockedError,
  type FileStorageOptions,
} from '../../src/file.js';
import { msgpackCodec } from '../../src/transport/codec.js';
import { compiled, fileHarness, fixture, runNode, tempDir } from './file-harness.js';
import { F_COLUMNS, F_ENTRIES, frame, LOG_KIND } from '../../src/storage/file-format.js';
import { storageConformanceChecks } from '../../src/testing.js';
import { entries, type Tr } from './workload.js';
import type { Entry } from '../../src/core/message.js';

const variants: Array<[string, FileStorageOptions]> = [
  ['FileStorage', {}],
  ['FileStorage with 256-byte segments', { segmentBytes: 256 }],
  ["FileStorage with the transport's msgpackCodec", { codec: msgpackCodec }],
];
describe.each(variants)('Storage contract: %s', (_, options) => {
  for (const check of storageConformanceChecks(() => fileHarness(options))) it(check.name, check.run);
});

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A temp dir and a way to open FileStorages in it, all closed and removed after the test. */
async function workspace(options: FileStorageOptions = {}) {
  const { dir, remove } = await tempDir();
  const opened: FileStorage<Tr, unknown>[] = [];
  cleanups.push(async () => {
    for (const s of opened) await s.close();
    await remove();
  });
  const open = (extra: FileStorageOptions = {}) => {
    const s = new FileStorage<Tr, unknown>(dir, { ...options, ...extra });
    opened.push(s);
    return s;
  };
  const segments = async () =>
    (await readdir(dir))
      .filter((n) => n.endsWith('.seg'))
      .sort()
      .map((n) => path.join(dir, n));
  return { dir, open, segments };
}

/** Saves batches of `size` entries; returns the offset at which each batch's record starts. */
async function writeBatches(
  s: FileStorage<Tr, unknown>,
  file: () => Promise<string>,
  count: number,
  size: number,
): Promise<number[]> {
  const starts: number[] = [];
  for (let b = 0; b < count; b++) {
    starts.push((await stat(await file())).size);
    await s.save({ append: entries(b * size + 1, (b + 1) * size, 1) });
  }
  return starts;
}

/** A fresh workspace with ten small batches spread over several 300-byte segments, closed again. */
async function manySegments() {
  const w = await workspace({ segmentBytes: 300 });
  const s = w.open();
  await s.load();
  for (let b = 0; b < 10; b++) await s.save({ append: entries(b * 3 + 1, b * 3 + 3, 1) });
  await s.close();
  return { w, segs: await w.segments() };
}

/** A fresh workspace whose single segment holds `count` batches of `size` entries, closed again. */
async function oneSegment(count: number, size: number) {
  const w = await workspace();
  const s = w.open();
  await s.load();
  const seg = async () => (await w.segments())[0]!;
  const starts = await writeBatches(s, seg, count, size);
  await s.close();
  return { w, seg, starts };
}

async function flipByte(file: string, offset: number): Promise<void> {
  const buf = await readFile(file);
  buf[offset] = buf[offset]! ^ 0x10;
  await writeFile(file, buf);
}

describe('FileStorage on disk', () => {
  it('rolls to new segments and deletes the segments a snapshot covers', async () => {
    const w = await workspace({ segmentBytes: 1024 });
    let s = w.open();
    await s.load();
    for (let b = 0; b < 60; b++) await s.save({ append: entries(b * 5 + 1, b * 5 + 5, 1) });
    const before = await w.segments();
    expect(before.length).toBeGreaterThan(5);
    await s.save({ snapshot: { lastIncludedIndex: 297, lastIncludedTerm: 1, data: 'up to 297' } });
    const after = await w.segments();
    expect(after.length).toBeLessThanOrEqual(2);
    expect(after.at(-1)).toBe(before.at(-1));
    await s.close();
    s = w.open();
    const state = await s.load();
    expect(state.entries).toEqual(entries(298, 300, 1));
    // Compaction keeps disk use bounded however long the log runs.
    let last = 300;
    for (let round = 0; round < 20; round++) {
      for (let b = 0; b < 20; b++, last += 5) await s.save({ append: entries(last + 1, last + 5, 2) });
      await s.save({ snapshot: { lastIncludedIndex: last - 2, lastIncludedTerm: 2, data: round } });
      expect((await w.segments()).length).toBeLessThanOrEqual(2);
    }
    await s.close();
    expect((await w.open().load()).entries).toEqual(entries(last - 1, last, 2));
  });

  it('starts every segment with the hard state, so deleting old segments keeps term and vote', async () => {
    const w = await workspace({ segmentBytes: 200 });
    const s = w.open();
    await s.load();
    await s.save({ hardState: { term: 9, votedFor: 4 } });
    for (let b = 0; b < 20; b++) await s.save({ append: entries(b * 3 + 1, b * 3 + 3, 9) });
    await s.save({ snapshot: { lastIncludedIndex: 60, lastIncludedTerm: 9, data: null } });
    expect((await w.segments()).length).toBe(1);
    await s.close();
    const state = await w.open().load();
    expect([state.term, state.votedFor, state.entries]).toEqual([9, 4, []]);
  });

  it('keeps the hard state when a snapshot-only batch arrives while the newest segment is empty', async () => {
    const w = await workspace({ segmentBytes: 200 });
    let s = w.open();
    await s.load();
    await s.save({ hardState: { term: 3, votedFor: 2 } });
    for (let b = 0; b < 6; b++) await s.save({ append: entries(b * 3 + 1, b * 3 + 3, 3) });
    await s.close();
    // As if the crash came during the first write into the newest segment.
    const segs = await w.segments();
    expect(segs.length).toBeGreaterThan(1);
    await truncate(segs.at(-1)!, 0);
    s = w.open();
    const before = await s.load();
    expect([before.term, before.votedFor]).toEqual([3, 2]);
    const last = before.entries.at(-1)!;
    await s.save({ snapshot: { lastIncludedIndex: last.index, lastIncludedTerm: last.term, data: 'all' } });
    await s.close();
    const after = await w.open().load();
    expect([after.term, after.votedFor, after.entries]).toEqual([3, 2, []]);
  });

  describe('torn tail', () => {
    it('cuts a record cut short at the end of the last segment, keeps everything before and reports it', async () => {
      const { w, seg, starts } = await oneSegment(5, 4);
      const file = await seg();
      const size = (await stat(file)).size;
      await truncate(file, size - 3);
      const warnings: string[] = [];
      const r = w.open({ onWarning: (m) => warnings.push(m) });
      expect((await r.load()).entries).toEqual(entries(1, 16, 1));
      expect(r.recovery).toEqual({ tornTailBytes: size - 3 - starts[4]!, file });
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toContain(file);
      expect((await stat(file)).size).toBe(starts[4]);
      // The log goes on cleanly after the cut.
      await r.save({ append: entries(17, 18, 2) });
      await r.close();
      const again = w.open();
      expect((await again.load()).entries).toEqual([...entries(1, 16, 1), ...entries(17, 18, 2)]);
      expect(again.recovery.tornTailBytes).toBe(0);
    });

    it('treats a partial header and a zero-filled tail as torn', async () => {
      const { w, seg, starts } = await oneSegment(3, 2);
      const file = await seg();
      await truncate(file, starts[2]! + 7);
      let r = w.open();
      expect((await r.load()).entries).toEqual(entries(1, 4, 1));
      expect(r.recovery.tornTailBytes).toBe(7);
      await r.close();
      await appendFile(file, Buffer.alloc(8192));
      r = w.open();
      expect((await r.load()).entries).toEqual(entries(1, 4, 1));
      expect(r.recovery.tornTailBytes).toBe(8192);
    });

    it('treats damage in the very last record as torn, since it cannot be told from an unfinished write', async () => {
      const { w, seg, starts } = await oneSegment(3, 2);
      await flipByte(await seg(), starts[2]! + 20);
      const r = w.open();
      expect((await r.load()).entries).toEqual(entries(1, 4, 1));
      expect(r.recovery.tornTailBytes).toBeGreaterThan(0);
    });
  });

  describe('entries in columns', () => {
    /** The kind byte of every record in the workspace's only segment. */
    async function recordKinds(w: Awaited<ReturnType<typeof workspace>>): Promise<number[]> {
      const [seg] = await w.segments();
      const buf = await readFile(seg!);
      const kinds: number[] = [];
      for (let off = 0; off < buf.length; off += 16 + buf.readUInt32LE(off)) kinds.push(buf[off + 4]!);
      return kinds;
    }

    const noop = (index: number) => ({ index, term: 1, transition: { id: 'noop' }, kind: 'noop' });
    const config = (index: number) => ({ index, term: 1, transition: { id: 'noop' }, kind: 'config', config: [1, 2] });
    const withTransition = (index: number, transition: unknown) => ({ index, term: 1, transition, kind: 'transition' });
    const cases: Array<[string, unknown[], boolean]> = [
      ['commands of one shape', [1, 2, 3].map((i) => withTransition(i, { id: i, key: `k${i}`, value: [i] })), true],
      [
        'a noop, a configuration entry and commands of two shapes',
        [noop(1), config(2), withTransition(3, { id: 3, n: 1 }), withTransition(4, { id: 4, s: 'x' })],
        true,
      ],
      [
        'a command with an own __proto__ key',
        [withTransition(1, JSON.parse('{"id":1,"__proto__":{"polluted":true}}'))],
        true,
      ],
      [
        'an entry with a field of its own',
        [{ ...withTransition(1, { id: 1 }), note: 'kept' }, withTransition(2, { id: 2 })],
        false,
      ],
      // Not one column per key (JSON writes null for undefined in a column), but entries in columns.
      [
        'a command with an undefined value',
        [withTransition(1, { id: 1, gone: undefined }), withTransition(2, { id: 2, gone: 2 })],
        true,
      ],
      ['a command with a function value', [withTransition(1, { id: 1, f: () => 1 })], true],
    ];
    it.each(cases)('%s: reads back what a JSON round trip gives', async (_, batch, columns) => {
      const w = await workspace();
      const s = w.open();
      await s.load();
      await s.save({ append: batch as Entry<Tr>[] });
      await s.close();
      const [first] = await recordKinds(w);
      expect(first! & F_COLUMNS).toBe(columns ? F_COLUMNS : 0);
      const state = await w.open().load();
      expect(state.entries).toEqual(JSON.parse(JSON.stringify(batch)));
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    });

    it.each([
      ['keys that are not a list of names', [1, [1], [0], [[1]], [], 'id']],
      ['a key column of the wrong length', [1, [1, 1], [0, 0], [[1]], [], ['id']]],
      ['a key __proto__', [1, [1], [0], [[{}]], [], ['__proto__']]],
      ['an unknown kind', [1, [1], [7], [{ id: 1 }], [], 0]],
      ['a configuration entry without members', [1, [1], [2], [{ id: 1 }], [], 0]],
      ['no first index', [[1], [0], [{ id: 1 }], [], 0]],
    ])('refuses a record whose columns hold %s as corrupt', async (_, columns) => {
      const w = await workspace();
      const s = w.open();
      await s.load();
      await s.save({ hardState: { term: 1, votedFor: undefined } });
      await s.close();
      const [seg] = await w.segments();
      const start = (await stat(seg!)).size;
      const payload = Buffer.from(JSON.stringify(columns));
      await appendFile(
        seg!,
        frame(LOG_KIND | F_ENTRIES | F_COLUMNS, payload.length, (buf, at) => buf.set(payload, at)),
      );
      const err = (await w
        .open()
        .load()
        .catch((e: unknown) => e)) as CorruptStorageError;
      expect(err).toBeInstanceOf(CorruptStorageError);
      expect([err.file, err.offset]).toEqual([seg, start]);
      expect(err.message).toContain('cannot be decoded');
    });
  });

  describe('corruption', () => {
    async function expectCorrupt(
      w: Awaited<ReturnType<typeof workspace>>,
      file: string,
      offset: number,
    ): Promise<void> {
      const err = await w
        .open()
        .load()
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(err).toBeInstanceOf(CorruptStorageError);
      const c = err as CorruptStorageError;
      expect(c.file).toBe(file);
      expect(c.offset).toBe(offset);
      expect(c.message).toContain(file);
      expect(c.message).toContain(String(offset));
      // The failed load released the lock: trying again gives the same answer, not "locked".
      await expect(w.open().load()).rejects.toBeInstanceOf(CorruptStorageError);
    }

    it.each([
      ['a bad payload checksum', 1, 30],
      ['a damaged length', 3, 1],
    ] as const)('refuses %s before the tail', async (_, record, byte) => {
      const { w, seg, starts } = await oneSegment(5, 3);
      await flipByte(await seg(), starts[record]! + byte);
      await expectCorrupt(w, await seg(), starts[record]!);
    });

    it('refuses a segment other than the last cut short or damaged', async () => {
      const { w, segs } = await manySegments();
      expect(segs.length).toBeGreaterThan(2);
      const size = (await stat(segs[0]!)).size;
      await truncate(segs[0]!, size - 5);
      const err = (await w
        .open()
        .load()
        .catch((e: unknown) => e)) as CorruptStorageError;
      expect(err).toBeInstanceOf(CorruptStorageError);
      expect(err.file).toBe(segs[0]);
      expect(err.message).toContain(segs[0]!);
    });

    it('refuses a missing segment', async () => {
      const { w, segs } = await manySegments();
      await unlink(segs[1]!);
      const err = (await w
        .open()
        .load()
        .catch((e: unknown) => e)) as CorruptStorageError;
      expect(err).toBeInstanceOf(CorruptStorageError);
      expect(err.file).toBe(segs[1]);
    });

    // "A batch is all or nothing, snapshot included": the record a snapshot file names was durable
    // before the snapshot was written, so its damage is corruption, not an unfinished write.
    it.each([
      ['the record of the same batch, damaged', 'with', 'flip'],
      ['the record before a snapshot-only batch, damaged', 'without', 'flip'],
      ['the record of the same batch, missing from a log that ends cleanly before it', 'with', 'cut'],
    ] as const)('refuses a last record that the snapshot file names: %s', async (_, entriesInBatch, damage) => {
      const { w, seg, starts } = await oneSegment(3, 2);
      const s = w.open();
      await s.load();
      const file = await seg();
      const at = entriesInBatch === 'with' ? (await stat(file)).size : starts[2]!;
      const snapshot = { lastIncludedIndex: 5, lastIncludedTerm: 1, data: 'five', members: [1, 2, 3] };
      await s.save(entriesInBatch === 'with' ? { append: entries(7, 8, 1), snapshot } : { snapshot });
      await s.close();
      if (damage === 'flip') await flipByte(file, at + 20);
      else await truncate(file, at);
      const size = (await stat(file)).size;
      await expectCorrupt(w, file, at);
      // Nothing was cut: the damaged record is still there to inspect.
      expect((await stat(file)).size).toBe(size);
    });

    it('refuses a damaged snapshot file', async () => {
      const w = await workspace();
      const s = w.open();
      await s.load();
      await s.save({
        append: entries(1, 4, 1),
        snapshot: { lastIncludedIndex: 2, lastIncludedTerm: 1, data: { big: 'x'.repeat(100) } },
      });
      await s.close();
      await flipByte(path.join(w.dir, 'snapshot'), 60);
      await expect(w.open().load()).rejects.toBeInstanceOf(CorruptStorageError);
    });
  });

  describe('format', () => {
    const snapshot = { lastIncludedIndex: 1, lastIncludedTerm: 1, data: 1, members: [1, 2] };
    it('marks a new directory with its format version, and reads it back', async () => {
      const w = await workspace();
      const s = w.open();
      await s.load();
      await s.save({ append: entries(1, 2, 1), snapshot });
      await s.close();
      expect(await readFile(path.join(w.dir, 'FORMAT'), 'utf8')).toBe('tickraft FileStorage format 3\n');
      expect((await w.open().load()).snapshot).toEqual(snapshot);
    });

    it('reads a format-2 directory written by the previous version, then marks it format 3 and goes on', async () => {
      // tests/storage/fixtures/format-2: written by tickraft at cedb0dc (hard state, a noop, a
      // configuration entry, an entry with a field of its own, a snapshot with members, a
      // truncation, three segments); format-2-state.json is what that version loaded from it.
      const w = await workspace();
      await cp(fixture('format-2'), w.dir, { recursive: true });
      const expected = JSON.parse(await readFile(fixture('format-2-state.json'), 'utf8')) as unknown;
      const s = w.open();
      expect(await s.load()).toEqual(expected);
      expect(await readFile(path.join(w.dir, 'FORMAT'), 'utf8')).toBe('tickraft FileStorage format 3\n');
      const more = entries(13, 15, 2);
      await s.save({ append: more });
      await s.close();
      const state = await w.open().load();
      expect(state.entries).toEqual([...(expected as { entries: unknown[] }).entries, ...more]);
    });

    it('leaves a format-2 directory it cannot read marked format 2', async () => {
      const w = await workspace();
      await cp(fixture('format-2'), w.dir, { recursive: true });
      await flipByte(path.join(w.dir, 'log-0000000000000001.seg'), 30);
      await expect(w.open().load()).rejects.toBeInstanceOf(CorruptStorageError);
      expect(await readFile(path.join(w.dir, 'FORMAT'), 'utf8')).toBe('tickraft FileStorage format 2\n');
    });

    it.each([
      ['format 1 (no FORMAT file, written before snapshots kept their members)', undefined, 1],
      ['a newer format', 'tickraft FileStorage format 4\n', 4],
    ] as const)('refuses %s with StorageFormatError, and releases the lock', async (_, text, version) => {
      const w = await workspace();
      const s = w.open();
      await s.load();
      await s.save({ append: entries(1, 2, 1), snapshot });
      await s.close();
      const format = path.join(w.dir, 'FORMAT');
      if (text === undefined) await unlink(format);
      else await writeFile(format, text);
      const err = (await w
        .open()
        .load()
        .catch((e: unknown) => e)) as StorageFormatError;
      expect(err).toBeInstanceOf(StorageFormatError);
      expect(err.version).toBe(version);
      expect(err.message).toContain(`format ${version}`);
      expect(err.message).toContain(w.dir);
      await expect(w.open().load()).rejects.toBeInstanceOf(StorageFormatError);
    });

    it('refuses a FORMAT file it cannot read as corrupt', async () => {
      const w = await workspace();
      const s = w.open();
      await s.load();
      await s.close();
      const format = path.join(w.dir, 'FORMAT');
      await writeFile(format, 'tickraft FileStorage form');
      const err = (await w
        .open()
        .load()
        .catch((e: unknown) => e)) as CorruptStorageError;
      expect(err).toBeInstanceOf(CorruptStorageError);
      expect([err.file, err.offset]).toEqual([format, 0]);
    });
  });

  describe('lock', () => {
    it('refuses a second open in the same process until the first is closed', async () => {
      const w = await workspace();
      const a = w.open();
      await a.load();
      const err = await w
        .open()
        .load()
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StorageLockedError);
      expect((err as StorageLockedError).message).toContain('already open in this process');
      await a.close();
      await w.open().load();
    });

    it('refuses an open from another process while this one holds the directory', async () => {
      const w = await workspace();
      const a = w.open();
      await a.load();
      const out = await runNode(compiled('tests/storage/lock-child.js'), [w.dir, 'try']);
      expect(out.stderr).toBe('');
      expect(JSON.parse(out.stdout)).toMatchObject({ error: 'StorageLockedError', pid: process.pid });
      await a.close();
      const ok = await runNode(compiled('tests/storage/lock-child.js'), [w.dir, 'try']);
      expect(JSON.parse(ok.stdout)).toEqual({ ok: true });
    });

    it('takes over the lock of a process killed with SIGKILL', async () => {
      const w = await workspace();
      const child = spawn(process.execPath, [compiled('tests/storage/lock-child.js'), w.dir, 'hold'], {
        stdio: ['pipe', 'pipe', 'inherit'],
      });
      const exited = new Promise((resolve) => child.on('exit', resolve));
      await new Promise<void>((resolve, reject) => {
        child.stdout.setEncoding('utf8').on('data', (d: string) => d.includes('locked') && resolve());
        child.on('exit', () => reject(new Error('child exited early')));
      });
      // While it lives, the lock holds.
      await expect(w.open().load()).rejects.toBeInstanceOf(StorageLockedError);
      child.kill('SIGKILL');
      await exited;
      const s = w.open();
      const state = await s.load();
      expect(state.term).toBe(7);
      expect(state.entries).toEqual([{ index: 1, term: 7, kind: 'transition', transition: { id: 'held' } }]);
    });

    it('takes over a lock naming this pid but not held here (pid reused after a restart), and an unreadable one', async () => {
      const w = await workspace();
      await writeFile(path.join(w.dir, 'LOCK'), JSON.stringify({ pid: process.pid, token: 'gone' }));
      const a = w.open();
      await a.load();
      await a.close();
      await writeFile(path.join(w.dir, 'LOCK'), '{"pid":');
      await w.open().load();
    });

    it('removes its lock file on close', async () => {
      const w = await workspace();
      const a = w.open();
      await a.load();
      expect(await readdir(w.dir)).toContain('LOCK');
      await a.close();
      expect(await readdir(w.dir)).not.toContain('LOCK');
    });
  });

  it('rejects save before load and after close', async () => {
    const w = await workspace();
    const s = w.open();
    await expect(s.save({ hardState: { term: 1, votedFor: undefined } })).rejects.toThrow(/before load/);
    await s.load();
    await s.close();
    await expect(s.save({ hardState: { term: 1, votedFor: undefined } })).rejects.toThrow(/after close/);
  });

  it('computes the same CRC-32 natively and with the portable table', () => {
    const data = Buffer.from('The quick brown fox jumps over the lazy dog');
    expect(tableCrc32(data)).toBe(0x414fa339);
    expect(crc32(data)).toBe(0x414fa339);
    expect(tableCrc32(data.subarray(10), tableCrc32(data.subarray(0, 10)))).toBe(0x414fa339);
  });
});
