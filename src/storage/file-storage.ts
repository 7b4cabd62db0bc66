// FileStorage: a Storage in one directory. The format is file-format.ts, reading a directory back
// (and torn-tail repair) file-recovery.ts, the lock dir-lock.ts, the errors file-errors.ts.
import { constants } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import type { Codec } from '../core/codec.js';
import type { CoreSnapshot } from '../core/message.js';
import type { ReplicaId } from '../core/types.js';
import type { PersistentState, Storage, StorageBatch } from '../core/storage.js';
import { logOptions } from './log-options.js';
import { lockDirectory, type DirLock } from './dir-lock.js';
import {
  encodeLogRecord,
  encodeSnapshotRecord,
  segmentName,
  SNAPSHOT_FILE,
  SNAPSHOT_TMP,
  type Position,
  type Segment,
} from './file-format.js';
import { DirectoryReader, type FileStorageRecovery } from './file-recovery.js';
import { syncDir, unlinkIfPresent, withFile, writeAll } from './fs-helpers.js';
// For the doc comments' links.
import type { CorruptStorageError, StorageFormatError, StorageLockedError } from './file-errors.js';

/** Options of {@link FileStorage}. */
export interface FileStorageOptions {
  /** Serializes log entries and snapshot data. Default {@link jsonStorageCodec}. */
  codec?: Codec;
  /** A segment file that has reached this size is closed and a new one started. Default 64 MiB. */
  segmentBytes?: number;
  /**
   * Whether `save` waits for the data to reach the disk (fsync) before resolving. Default true.
   * With false, saves survive a crash of the process but not of the machine: only for tests
   * and benchmarks.
   */
  fsync?: boolean;
  /** Called with a one-line note when opening repaired something, e.g. cut a torn tail. */
  onWarning?: (message: string) => void;
}

/**
 * A {@link Storage} in a directory: an append-only, checksummed log in segment files plus a
 * snapshot file. Each `save` is one write of one buffer and one fsync (two more and a rename
 * when the batch carries a snapshot), and resolves only after them.
 *
 * A save is all-or-nothing across a crash, its snapshot included: after a restart the storage
 * holds every acknowledged save and, of the one in flight, either all of it or none.
 *
 * Opening (`load`) takes a lock that one process at a time can hold; a lock left by a process
 * that has died is taken over. A crash in the middle of a save can leave a torn record at the
 * very end of the log; `load` cuts it off, reports it in {@link FileStorage.recovery} and
 * through `onWarning`. The rule: a damaged record is a torn tail only if it is in the last
 * segment and no valid record follows it anywhere in that file. Any other damage throws
 * {@link CorruptStorageError}. A damaged last record is thus reported and dropped rather than
 * refused, because it cannot be told apart from a write that never completed; unless the
 * snapshot file names it: the snapshot was written after that record was durable, so its
 * damage is corruption.
 *
 * Everything a {@link Storage} must keep is kept: every field of an entry (through the codec)
 * and of a snapshot, its `members` included. The directory carries its format version; one
 * written in another format is refused with {@link StorageFormatError}.
 */
export class FileStorage<T, D> implements Storage<T, D> {
  /** What the last `load` repaired. */
  recovery: FileStorageRecovery = { tornTailBytes: 0, file: undefined };

  private readonly dir: string;
  private readonly codec: Codec;
  private readonly segmentBytes: number;
  private readonly fsync: boolean;
  private readonly onWarning: ((message: string) => void) | undefined;
  private phase: 'new' | 'open' | 'closed' = 'new';
  private realDir = '';
  private dirLock: DirLock | undefined;
  /** Ascending; the last one is the segment being appended to. */
  private segments: Segment[] = [];
  private active: FileHandle | undefined;
  private activeSize = 0;
  private term = 0;
  private votedFor: ReplicaId | undefined = undefined;
  /** The log's last record, which the next snapshot file names. */
  private lastRecord: Position | undefined;
  /** Serializes saves, so that an overlapping call cannot interleave writes. */
  private queue: Promise<unknown> = Promise.resolve();
  /** After a failed write the tail of the log is unknown: no later write may go after it. */
  private failure: unknown = undefined;

  /**
   * Touches nothing on disk; {@link FileStorage.load} opens the directory.
   * @param dir - The directory to keep the files in; created if missing.
   * @param options - See {@link FileStorageOptions}.
   */
  constructor(dir: string, options: FileStorageOptions = {}) {
    this.dir = path.resolve(dir);
    ({
      codec: this.codec,
      segmentBytes: this.segmentBytes,
      fsync: this.fsync,
      onWarning: this.onWarning,
    } = logOptions(options, 'FileStorage'));
  }

  /**
   * Locks the directory and reads everything saved so far, cutting a torn tail if there is one.
   * Rejects with {@link StorageLockedError} if another live FileStorage has the directory, with
   * {@link StorageFormatError} if it was written in another format, and with
   * {@link CorruptStorageError} if the data is damaged beyond a torn tail (the lock is then
   * released, so that the directory can be inspected).
   */
  async load(): Promise<PersistentState<T, D>> {
    if (this.phase === 'closed') throw new Error('FileStorage: load() after close()');
    await this.queue.catch(() => undefined);
    // Reading the directory again also repairs whatever a failed save left at the tail.
    this.failure = undefined;
    if (this.phase === 'new') await this.lock();
    else await this.closeActive();
    try {
      const state = await this.readAll();
      this.phase = 'open';
      return state;
    } catch (err) {
      await this.closeActive();
      await this.unlock();
      this.phase = 'new';
      throw err;
    }
  }

  /**
   * Appends the batch as one record with one write and one fsync, then, if it carries a
   * snapshot, replaces the snapshot file atomically and deletes the segments it covers.
   * After a failed save every later save rejects with the same error: the end of the log is
   * then unknown, and reopening repairs it.
   */
  save(batch: StorageBatch<T, D>): Promise<void> {
    const run = this.queue.then(() => this.apply(batch));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Waits for a save in progress, closes the files and releases the lock. Idempotent. */
  async close(): Promise<void> {
    if (this.phase === 'closed') return;
    await this.queue.catch(() => undefined);
    const wasLocked = this.phase === 'open';
    this.phase = 'closed';
    await this.closeActive();
    if (wasLocked) await this.unlock();
  }

  private async apply(batch: StorageBatch<T, D>): Promise<void> {
    if (this.phase !== 'open')
      throw new Error(`FileStorage: save() ${this.phase === 'new' ? 'before load()' : 'after close()'}`);
    if (this.failure !== undefined) throw this.failure;
    try {
      const append = batch.append !== undefined && batch.append.length > 0 ? batch.append : undefined;
      if (batch.hardState !== undefined || batch.truncateFrom !== undefined || append !== undefined) {
        if (this.activeSize >= this.segmentBytes) await this.roll();
        const hard =
          batch.hardState ?? (this.activeSize === 0 ? { term: this.term, votedFor: this.votedFor } : undefined);
        const record = encodeLogRecord(hard, batch.truncateFrom, append, batch.snapshot !== undefined, this.codec);
        // With fsync on, the segment is open with O_DSYNC where the platform has it: this one
        // write is also the flush.
        await writeAll(this.active!, record, this.activeSize);
        if (this.fsync && this.syncFlag() === 0) await this.active!.datasync();
        this.lastRecord = { seq: this.segments[this.segments.length - 1]!.seq, offset: this.activeSize };
        this.activeSize += record.length;
        if (hard !== undefined) ({ term: this.term, votedFor: this.votedFor } = hard);
        if (append !== undefined) {
          const seg = this.segments[this.segments.length - 1]!;
          seg.maxIndex = Math.max(seg.maxIndex, append[append.length - 1]!.index);
        }
      }
      if (batch.snapshot !== undefined) await this.writeSnapshot(batch.snapshot);
    } catch (err) {
      this.failure = err;
      throw err;
    }
  }

  private async roll(): Promise<void> {
    const seq = this.segments[this.segments.length - 1]!.seq + 1;
    const handle = await open(
      this.segmentPath(seq),
      constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | this.syncFlag(),
    );
    // The new file's directory entry must be durable before a save in it is acknowledged.
    if (this.fsync) await syncDir(this.realDir);
    await this.closeActive();
    this.active = handle;
    this.activeSize = 0;
    this.segments.push({ seq, maxIndex: 0 });
  }

  private async writeSnapshot(snapshot: CoreSnapshot<D>): Promise<void> {
    // Never delete the newest segment that holds a record: it holds the current hard state.
    // (Only the active segment can be empty: after a crash during its first write.)
    const limit = this.segments.length - (this.activeSize > 0 ? 1 : 2);
    let keep = 0;
    while (keep < limit && this.segments[keep]!.maxIndex <= snapshot.lastIncludedIndex) keep++;
    const keepFrom = this.segments[keep]!.seq;
    const record = encodeSnapshotRecord(snapshot, keepFrom, this.lastRecord, this.codec);
    const tmp = path.join(this.realDir, SNAPSHOT_TMP);
    await withFile(tmp, 'w', async (handle) => {
      await writeAll(handle, record, 0);
      if (this.fsync) await handle.sync();
    });
    await rename(tmp, path.join(this.realDir, SNAPSHOT_FILE));
    if (this.fsync) await syncDir(this.realDir);
    // Once the snapshot naming keepFrom is durable the older segments are garbage; if deleting
    // them is interrupted, the next load finishes the job.
    for (const seg of this.segments.slice(0, keep)) await unlinkIfPresent(this.segmentPath(seg.seq));
    this.segments = this.segments.slice(keep);
  }

  /**
   * O_DSYNC makes each write return only once its data is durable: one system call (and one trip
   * through libuv's thread pool) per save instead of write + fdatasync.
   */
  private syncFlag(): number {
    return this.fsync ? ((constants as { O_DSYNC?: number }).O_DSYNC ?? 0) : 0;
  }

  private segmentPath(seq: number): string {
    return path.join(this.realDir || this.dir, segmentName(seq));
  }

  private async closeActive(): Promise<void> {
    const handle = this.active;
    this.active = undefined;
    await handle?.close();
  }

  private async lock(): Promise<void> {
    this.dirLock = await lockDirectory(this.dir);
    this.realDir = this.dirLock.realDir;
  }

  private async unlock(): Promise<void> {
    const held = this.dirLock;
    this.dirLock = undefined;
    await held?.release();
  }

  /** Reads the directory back (see file-recovery.ts) and opens the last segment for appending. */
  private async readAll(): Promise<PersistentState<T, D>> {
    const reader = new DirectoryReader<T, D>(this.realDir, {
      codec: this.codec,
      fsync: this.fsync,
      onWarning: this.onWarning,
    });
    let found;
    try {
      found = await reader.readAll();
    } finally {
      this.recovery = reader.recovery;
    }
    this.segments = found.segments;
    this.lastRecord = found.lastRecord;
    this.term = found.state.term;
    this.votedFor = found.state.votedFor;
    const last = this.segments[this.segments.length - 1]!;
    this.active = await open(this.segmentPath(last.seq), constants.O_RDWR | this.syncFlag());
    this.activeSize = found.activeSize;
    return found.state;
  }
}
