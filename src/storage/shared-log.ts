// One write-ahead log per process for many Raft groups: every group's batches of a flush go
// into one write and one fdatasync. Records are framed as FileStorage's (file-format.ts: length,
// kind, CRC of the payload, CRC of the header), with kinds of their own.
import { readdirSync } from 'node:fs';
import { open, readFile, truncate, type FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import type { Codec } from '../core/codec.js';
import type { CoreSnapshot, Entry } from '../core/message.js';
import type { PersistentState, Storage, StorageBatch } from '../core/storage.js';
import type { ReplicaId } from '../core/types.js';
import { jsonStorageCodec } from './codec.js';
import { lockDirectory, type DirLock } from './dir-lock.js';
import { CorruptStorageError } from './file-errors.js';
import { findRecord, frame, parseRecord, SHARED_KINDS } from './file-format.js';
import { syncDir, unlinkIfPresent, writeAll } from './fs-helpers.js';
import { MemoryStorage } from './memory.js';

/*
 * Directory: `LOCK` and `wal-<seq, 16 digits>.log` segments. Every segment starts with a
 * checkpoint: one CHECKPOINT record per group (its whole state: term, vote, snapshot, entries),
 * then one CHECKPOINT_END. Then come BATCH records (one group's save) and DROP records (a group
 * removed). When a segment passes `checkpointBytes`, the next one is written with a checkpoint
 * of every group, made durable, and only then are the older segments deleted; so a crash at any
 * point leaves either the old segment or a complete new one. Recovery reads the newest segment
 * whose checkpoint is complete (deleting a newer incomplete one and any older ones), cuts a torn
 * tail, and refuses a damaged record that has a valid one after it (CorruptStorageError).
 * Payloads go through the codec: { g, h: [term, vote|null], t, a, s } for a batch.
 */
const [BATCH, CHECKPOINT, CHECKPOINT_END, DROP] = [SHARED_KINDS[0], SHARED_KINDS[0] + 1, SHARED_KINDS[0] + 2, 0x63];
const SEGMENT = /^wal-(\d{16})\.log$/;
const segmentName = (seq: number): string => `wal-${String(seq).padStart(16, '0')}.log`;

/** How a {@link SharedLog} is opened. */
export interface SharedLogOptions {
  /**
   * How entries and snapshots are encoded on disk.
   * @defaultValue {@link jsonStorageCodec}
   */
  codec?: Codec;
  /**
   * Bytes appended to a segment after its checkpoint before the next flush starts a new segment
   * with a checkpoint of every group and deletes the old: the log's compaction (each group's
   * snapshots shrink what a checkpoint holds). A checkpoint larger than this waits for as many
   * bytes as it has.
   * @defaultValue 64 MiB
   */
  checkpointBytes?: number;
}

/** Counts of what a {@link SharedLog} wrote. */
export interface SharedLogStats {
  /** Flushes: each is one write and one fdatasync, whatever the number of groups in it. */
  readonly flushes: number;
  /** Group batches written. */
  readonly batches: number;
  /** Bytes written, checkpoints included. */
  readonly bytes: number;
  /** Checkpoints written (new segments). */
  readonly checkpoints: number;
}

interface Waiting<T, D> {
  readonly group: number;
  readonly batch: StorageBatch<T, D> | undefined; // undefined: drop the group
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

interface BatchPayload<T, D> {
  g: number;
  h?: [number, ReplicaId | null];
  t?: number;
  a?: Entry<T>[];
  s?: CoreSnapshot<D>;
  /** 1 when the snapshot's data is undefined. */
  n?: 1;
}

/**
 * One write-ahead log per process for all its Raft groups: {@link SharedLog.storage} gives each
 * group a {@link Storage} of its own, and the saves of every group that arrive while a flush is
 * under way (as the groups of a `RaftHost` tick together) are written by the next flush in one
 * write and one fdatasync. Each save resolves once its flush is durable. Crash safety as for
 * `FileStorage`: CRC-checked records, a torn tail cut at recovery, a damaged record followed by
 * a valid one refused with {@link CorruptStorageError}; a failed write or sync fails the log
 * for good (every later save rejects with that error), since memory is then ahead of disk.
 *
 * Every group's state is also kept in memory (sharing the entry objects its replica holds), so
 * that a checkpoint can be written without reading the log back.
 *
 * @example
 * ```ts
 * const log = await SharedLog.open<Cmd, Data>('/var/lib/app/wal');
 * for (const g of log.groupIds()) host.createGroup(g, { ...optionsOf(g), storage: log.storage(g) });
 * ```
 */
export class SharedLog<T, D> {
  private readonly groups = new Map<number, MemoryStorage<T, D>>();
  private waiting: Waiting<T, D>[] = [];
  private flushing: Promise<void> | undefined;
  private failure: { error: unknown } | undefined;
  private closed = false;
  private readonly counts = { flushes: 0, batches: 0, bytes: 0, checkpoints: 0 };
  /** Bytes of the current segment's checkpoint (at recovery: of everything replayed). */
  private base: number;

  private constructor(
    private readonly dir: string,
    private readonly lock: DirLock,
    private readonly codec: Codec,
    private readonly checkpointBytes: number,
    private handle: FileHandle,
    private seq: number,
    private size: number,
  ) {
    this.base = size;
  }

  /**
   * Opens (creating if need be) and locks the log in `dir`, and recovers every group from it.
   * Rejects with {@link CorruptStorageError} if the log holds damage a torn write cannot explain,
   * and with `StorageLockedError` if another live process or instance holds the directory.
   */
  static async open<T, D>(dir: string, options: SharedLogOptions = {}): Promise<SharedLog<T, D>> {
    const codec = options.codec ?? jsonStorageCodec;
    const checkpointBytes = options.checkpointBytes ?? 64 * 1024 * 1024;
    if (!(Number.isSafeInteger(checkpointBytes) && checkpointBytes > 0))
      throw new TypeError(`SharedLog: checkpointBytes must be a positive integer, got ${checkpointBytes}`);
    const lock = await lockDirectory(dir);
    try {
      const seqs = readdirSync(dir)
        .map((n) => SEGMENT.exec(n)?.[1])
        .filter((s): s is string => s !== undefined)
        .map(Number)
        .sort((a, b) => b - a);
      const groups = new Map<number, MemoryStorage<T, D>>();
      let found: { seq: number; size: number } | undefined;
      for (const [i, seq] of seqs.entries()) {
        const file = path.join(dir, segmentName(seq));
        if (found) {
          await unlinkIfPresent(file); // older than a complete checkpoint
          continue;
        }
        const size = await replay(file, codec, groups);
        if (size !== undefined) found = { seq, size };
        // A checkpoint cut short by a crash: the older segment still stands (or, for the first
        // segment, nothing was ever saved). Without one, the log lost what it held: refuse.
        else if (i + 1 < seqs.length || seq === 1) await unlinkIfPresent(file);
        else throw new CorruptStorageError(file, 0, 'its checkpoint is incomplete and no older segment is left');
      }
      const log = found
        ? new SharedLog<T, D>(
            dir,
            lock,
            codec,
            checkpointBytes,
            await open(path.join(dir, segmentName(found.seq)), 'r+'),
            found.seq,
            found.size,
          )
        : await SharedLog.fresh<T, D>(dir, lock, codec, checkpointBytes);
      for (const [g, s] of groups) log.groups.set(g, s);
      await syncDir(dir);
      return log;
    } catch (error) {
      await lock.release();
      throw error;
    }
  }

  private static async fresh<T, D>(
    dir: string,
    lock: DirLock,
    codec: Codec,
    checkpointBytes: number,
  ): Promise<SharedLog<T, D>> {
    const handle = await open(path.join(dir, segmentName(1)), 'w+');
    const end = frame(CHECKPOINT_END, 0, () => undefined);
    await writeAll(handle, end, 0);
    await handle.datasync();
    return new SharedLog<T, D>(dir, lock, codec, checkpointBytes, handle, 1, end.length);
  }

  /** The groups the log holds (recovered, or saved to since), ascending. */
  groupIds(): number[] {
    return [...this.groups.keys()].sort((a, b) => a - b);
  }

  /**
   * The {@link Storage} of group `group`: hand it to that group's replica. Calling it again for
   * the same group gives a storage over the same state (a restarted replica finds what was saved).
   */
  storage(group: number): Storage<T, D> {
    if (!Number.isSafeInteger(group)) throw new TypeError(`SharedLog: a group id must be an integer, got ${group}`);
    return {
      load: async () => {
        if (this.failure) throw this.failure.error;
        return this.stateOf(group);
      },
      save: (batch) => this.enqueue(group, batch),
    };
  }

  /** Forgets group `group` for good (a DROP record): after a crash it is not recovered. */
  dropGroup(group: number): Promise<void> {
    return this.enqueue(group, undefined);
  }

  /** What the log has written so far (a copy). */
  get stats(): SharedLogStats {
    return { ...this.counts };
  }

  /** Waits for the flush under way, then closes the file and releases the directory. Later saves reject. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    while (this.flushing) await this.flushing;
    await this.handle.close();
    await this.lock.release();
  }

  private stateOf(group: number): Promise<PersistentState<T, D>> {
    return (this.groups.get(group) ?? new MemoryStorage<T, D>()).load();
  }

  private enqueue(group: number, batch: StorageBatch<T, D> | undefined): Promise<void> {
    if (this.failure) return Promise.reject(this.failure.error);
    if (this.closed) return Promise.reject(new Error('SharedLog: the log is closed'));
    return new Promise<void>((resolve, reject) => {
      this.waiting.push({ group, batch, resolve, reject });
      // The saves of one round of ticks arrive within the same turn: the flush waits for them.
      if (!this.flushing) this.flushing = new Promise<void>((r) => setImmediate(r)).then(() => this.flush());
    });
  }

  /** Writes what waits, one write and one fdatasync per round, until nothing waits. */
  private async flush(): Promise<void> {
    while (this.waiting.length > 0 && !this.failure) {
      const items = this.waiting;
      this.waiting = [];
      try {
        const records: Buffer[] = [];
        for (const w of items) {
          if (w.batch === undefined) {
            records.push(this.record(DROP, { g: w.group }));
            this.groups.delete(w.group);
            continue;
          }
          records.push(this.record(BATCH, batchPayload(w.group, w.batch)));
          let state = this.groups.get(w.group);
          if (!state) this.groups.set(w.group, (state = new MemoryStorage<T, D>()));
          await state.save(w.batch);
        }
        const buf = records.length === 1 ? records[0]! : Buffer.concat(records);
        await writeAll(this.handle, buf, this.size);
        await this.handle.datasync();
        this.size += buf.length;
        this.counts.flushes++;
        this.counts.bytes += buf.length;
        this.counts.batches += items.length;
        for (const w of items) w.resolve();
        // Appended since the checkpoint: at least checkpointBytes, and as much as the checkpoint
        // itself, so that rewriting a large state costs at most as much as what was appended.
        if (this.size - this.base >= Math.max(this.checkpointBytes, this.base)) await this.checkpoint();
      } catch (error) {
        this.failure = { error };
        for (const w of [...items, ...this.waiting.splice(0)]) w.reject(error);
      }
    }
    for (const w of this.waiting.splice(0)) w.reject(this.failure!.error);
    this.flushing = undefined;
  }

  /** Starts a new segment with every group's state, durable before the old segments go. */
  private async checkpoint(): Promise<void> {
    const seq = this.seq + 1;
    const records: Buffer[] = [];
    for (const g of this.groupIds()) {
      const s = await this.stateOf(g);
      const p: BatchPayload<T, D> = { g, h: [s.term, s.votedFor ?? null], a: s.entries as Entry<T>[] };
      if (s.snapshot) snapshotInto(p, s.snapshot as CoreSnapshot<D>);
      records.push(this.record(CHECKPOINT, p));
    }
    records.push(frame(CHECKPOINT_END, 0, () => undefined));
    const buf = Buffer.concat(records);
    const handle = await open(path.join(this.dir, segmentName(seq)), 'w+');
    try {
      await writeAll(handle, buf, 0);
      await handle.datasync();
      await syncDir(this.dir);
    } catch (error) {
      await handle.close();
      throw error;
    }
    const old = this.handle;
    [this.handle, this.seq, this.size, this.base] = [handle, seq, buf.length, buf.length];
    await old.close();
    for (let s = seq - 1; s >= 1; s--) await unlinkIfPresent(path.join(this.dir, segmentName(s)));
    await syncDir(this.dir);
    this.counts.checkpoints++;
    this.counts.bytes += buf.length;
  }

  private record(kind: number, payload: unknown): Buffer {
    const bytes = this.codec.encode(payload);
    return frame(kind, bytes.length, (buf, at) => buf.set(bytes, at));
  }
}

function batchPayload<T, D>(g: number, b: StorageBatch<T, D>): BatchPayload<T, D> {
  const p: BatchPayload<T, D> = { g };
  if (b.hardState) p.h = [b.hardState.term, b.hardState.votedFor ?? null];
  if (b.truncateFrom !== undefined) p.t = b.truncateFrom;
  if (b.append && b.append.length > 0) p.a = b.append as Entry<T>[];
  if (b.snapshot) snapshotInto(p, b.snapshot as CoreSnapshot<D>);
  return p;
}

/** A payload's batch, as the storage was given it (a vote of `null` on disk is none). */
function batchOf<T, D>(p: BatchPayload<T, D>): StorageBatch<T, D> {
  const batch: StorageBatch<T, D> = {};
  if (p.h) batch.hardState = { term: p.h[0], votedFor: p.h[1] ?? undefined };
  if (p.t !== undefined) batch.truncateFrom = p.t;
  if (p.a) batch.append = p.a;
  // A codec need not spell `undefined` (JSON cannot): data that was undefined is a flag instead.
  if (p.s) batch.snapshot = p.n ? { ...p.s, data: undefined as D } : p.s;
  return batch;
}

function snapshotInto<T, D>(p: BatchPayload<T, D>, s: CoreSnapshot<D>): void {
  p.s = s;
  if (s.data === undefined) p.n = 1;
}

/**
 * Replays one segment into `groups`: its size once a torn tail is cut, or undefined if its
 * checkpoint is incomplete (the crash came while it was written; the older segment stands).
 */
async function replay<T, D>(
  file: string,
  codec: Codec,
  groups: Map<number, MemoryStorage<T, D>>,
): Promise<number | undefined> {
  const buf = await readFile(file);
  const found = new Map<number, MemoryStorage<T, D>>();
  let complete = false;
  let off = 0;
  while (off < buf.length) {
    const r = parseRecord(buf, off);
    if (!r.ok) {
      const later = r.resumeAt === undefined ? -1 : findRecord(buf, r.resumeAt);
      if (r.fatal || later >= 0) throw new CorruptStorageError(file, off, r.reason);
      if (!complete) return undefined;
      await truncate(file, off); // a torn tail: the last flush never completed
      break;
    }
    const body = r.kind === CHECKPOINT_END ? undefined : (codec.decode(r.payload) as BatchPayload<T, D>);
    if (r.kind === CHECKPOINT_END) complete = true;
    else if (!complete && r.kind !== CHECKPOINT)
      throw new CorruptStorageError(file, off, 'a record before the checkpoint ends');
    else if (r.kind === DROP) found.delete(body!.g);
    else {
      let state = found.get(body!.g);
      if (!state) found.set(body!.g, (state = new MemoryStorage<T, D>()));
      await state.save(batchOf(body!));
    }
    off = r.end;
  }
  if (!complete) return undefined;
  for (const [g, s] of found) groups.set(g, s);
  return off;
}
