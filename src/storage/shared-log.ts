// SharedLog: one write-ahead log per process for many Raft groups, with group commit across
// groups. The format is shared-log-format.ts, reading it back shared-log-recovery.ts, each
// group's Storage group-storage.ts; the lock, framing and torn-tail rule are FileStorage's.
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import type { Codec } from '../core/codec.js';
import type { PersistentState, StorageBatch } from '../core/storage.js';
import { logOptions, type LogOptions } from './log-options.js';
import { lockDirectory, type DirLock } from './dir-lock.js';
import { segmentName } from './file-format.js';
import type { FileStorageRecovery } from './file-recovery.js';
import { syncDir, unlinkIfPresent, writeAll } from './fs-helpers.js';
import { GroupStorage } from './group-storage.js';
import { MemoryStorage } from './memory.js';
import {
  CHECKPOINT_KIND,
  encodeGroupRecord,
  encodeOuterRecord,
  encodeRemoveRecord,
  WRITE_KIND,
} from './shared-log-format.js';
import { readSharedLog } from './shared-log-recovery.js';
// For the doc comments' links.
import type { CorruptStorageError, StorageLockedError } from './file-errors.js';
import type { FileStorage } from './file-storage.js';

/** Options of {@link SharedLog}. */
export interface SharedLogOptions {
  /** Serializes log entries and snapshot data. Default {@link jsonStorageCodec}. */
  codec?: Codec;
  /**
   * A segment that has reached this size is closed and a new one started with a checkpoint of
   * every group, after which the old segments are deleted. The threshold grows to twice the last
   * checkpoint's size, so that checkpoints never cost more than the writes between them.
   * @defaultValue 64 MiB
   */
  segmentBytes?: number;
  /**
   * Whether a write waits for the data to reach the disk (fdatasync) before its saves resolve.
   * With false, saves survive a crash of the process but not of the machine: only for tests
   * and benchmarks.
   * @defaultValue true
   */
  fsync?: boolean;
  /** Called with a one-line note when opening repaired something, e.g. cut a torn tail. */
  onWarning?: (message: string) => void;
}

/** What a {@link SharedLog} has done since it was opened: counters for tests and benchmarks. */
export interface SharedLogStats {
  /** Group saves and removals made durable (a save with nothing in it is not counted). */
  saves: number;
  /** Writes to the log (one per group commit, one per checkpoint). */
  writes: number;
  /** fdatasync calls on segments (directory syncs not counted). */
  syncs: number;
  /** Checkpoints written (each starts a segment and lets the older ones go). */
  checkpoints: number;
}

interface Pending {
  readonly record: Buffer;
  /** Updates the in-memory state once the record is durable. */
  readonly apply: () => Promise<void>;
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

/** One group: its state in memory, and whether the log holds any of it. */
interface GroupState<T, D> {
  readonly memory: MemoryStorage<T, D>;
  written: boolean;
  removed: boolean;
}

/**
 * One write-ahead log for many Raft groups in one process: each group gets its own
 * {@link Storage} ({@link SharedLog.group}), and every save that arrives in the same turn of the
 * event loop, or while the previous write is in flight, goes to disk in one write and one
 * fdatasync, whatever the number of groups (group commit across groups). Each save resolves only
 * once that write is durable.
 *
 * Records are tagged with the group id and checksummed as in {@link FileStorage}; a write is one
 * outer record, so a crash loses at most the write in flight, all of it (none of its saves had
 * resolved). {@link SharedLog.open} cuts such a torn tail and refuses any other damage with
 * {@link CorruptStorageError}; the directory is locked against a second open, in this process or
 * another ({@link StorageLockedError}).
 *
 * Snapshots are kept inline, in the save's record. When the active segment is full the log starts
 * a new one with a checkpoint (every group's hard state, snapshot and entries after it) and deletes
 * the older ones, so disk use follows the groups' live state. In memory the log keeps each group's
 * hard state, latest snapshot and the entries after it (entries a snapshot covers are dropped), as
 * `MemoryStorage` does; the entries are the objects the replica saved, not copies.
 *
 * @example
 * ```ts
 * const log = new SharedLog<Cmd, State>('/var/lib/app/wal');
 * await log.open();
 * const replica = new Replica({ ...options, storage: log.group(groupId) });
 * ```
 */
export class SharedLog<T, D> {
  /** What the last {@link SharedLog.open} repaired. */
  recovery: FileStorageRecovery = { tornTailBytes: 0, file: undefined };
  /** Counters since {@link SharedLog.open}. */
  readonly stats: SharedLogStats = { saves: 0, writes: 0, syncs: 0, checkpoints: 0 };

  private readonly dir: string;
  private readonly options: LogOptions;
  private phase: 'new' | 'opening' | 'open' | 'closed' = 'new';
  private realDir = '';
  private dirLock: DirLock | undefined;
  private groups = new Map<number, GroupState<T, D>>();
  private handles = new WeakMap<GroupStorage<T, D>, GroupState<T, D>>();
  /** Ascending; the last one is being appended to. */
  private segments: number[] = [];
  private active: FileHandle | undefined;
  private activeSize = 0;
  private rollAt: number;
  private pending: Pending[] = [];
  private scheduled = false;
  /** The write in progress, if any. */
  private writing: Promise<void> | undefined;
  /** After a failed write the tail of the log is unknown: no later write may go after it. */
  private failure: unknown = undefined;

  /**
   * Touches nothing on disk; {@link SharedLog.open} opens the directory.
   * @param dir - The directory to keep the log in; created if missing. Not a FileStorage's.
   * @param options - See {@link SharedLogOptions}.
   */
  constructor(dir: string, options: SharedLogOptions = {}) {
    this.dir = path.resolve(dir);
    this.options = logOptions(options, 'SharedLog');
    this.rollAt = this.options.segmentBytes;
  }

  /**
   * Locks the directory and reads every group back, cutting a torn tail if there is one. Rejects
   * with {@link StorageLockedError} if another live SharedLog or FileStorage has the directory,
   * and with {@link CorruptStorageError} if the data is damaged beyond a torn tail or is not a
   * SharedLog's (the lock is then released). Call it once, before {@link SharedLog.group}.
   */
  async open(): Promise<void> {
    if (this.phase !== 'new') throw new Error(`SharedLog: open() when ${this.phase}`);
    this.phase = 'opening';
    try {
      this.dirLock = await lockDirectory(this.dir);
      this.realDir = this.dirLock.realDir;
      const found = await readSharedLog<T, D>(this.realDir, this.options);
      this.recovery = found.recovery;
      for (const [id, memory] of found.groups) this.groups.set(id, { memory, written: true, removed: false });
      this.segments = found.segments;
      this.activeSize = found.activeSize;
      this.active = await open(this.segmentPath(this.segments[this.segments.length - 1]!), constants.O_RDWR);
      this.phase = 'open';
    } catch (err) {
      await this.dirLock?.release();
      this.dirLock = undefined;
      this.phase = 'new';
      throw err;
    }
  }

  /** The ids of the groups that have data in the log (saved at least once, not removed), ascending. */
  groupIds(): number[] {
    return [...this.groups]
      .filter(([, g]) => g.written)
      .map(([id]) => id)
      .sort((a, b) => a - b);
  }

  /**
   * The {@link Storage} of group `id`, to hand to that group's replica: its `load` gives what the
   * group saved before (an empty state for a new group). A group exists in the log from its first
   * save on. Each call returns a new handle on the same group.
   * @param id - The group's id: a non-negative safe integer.
   */
  group(id: number): GroupStorage<T, D> {
    if (this.phase !== 'open') throw new Error(`SharedLog: group() when ${this.phase}`);
    if (!Number.isSafeInteger(id) || id < 0) throw new RangeError(`SharedLog: bad group id ${id}`);
    let state = this.groups.get(id);
    if (state === undefined) {
      state = { memory: new MemoryStorage<T, D>(), written: false, removed: false };
      this.groups.set(id, state);
    }
    const handle = new GroupStorage<T, D>(id, this);
    this.handles.set(handle, state);
    return handle;
  }

  /**
   * Removes group `id` and all its data: resolves once the removal is durable. Saves through its
   * existing handles reject from the call on; {@link SharedLog.group} with the same id later
   * starts an empty group. Removing a group the log does not have resolves at once.
   */
  removeGroup(id: number): Promise<void> {
    if (this.phase !== 'open') return Promise.reject(new Error(`SharedLog: removeGroup() when ${this.phase}`));
    const state = this.groups.get(id);
    if (state === undefined) return Promise.resolve();
    state.removed = true;
    this.groups.delete(id);
    if (!state.written) return Promise.resolve();
    return this.enqueue(encodeRemoveRecord(id), async () => {});
  }

  /** Waits for the writes in progress, closes the segment and releases the lock. Idempotent. */
  async close(): Promise<void> {
    if (this.phase === 'closed') return;
    const wasOpen = this.phase === 'open';
    this.phase = 'closed';
    while (this.writing !== undefined || this.pending.length > 0) {
      if (this.writing === undefined) await this.flush();
      else await this.writing;
    }
    const handle = this.active;
    this.active = undefined;
    await handle?.close();
    if (wasOpen) await this.dirLock?.release();
  }

  /** @internal */
  async loadGroup(_group: number, handle: GroupStorage<T, D>): Promise<PersistentState<T, D>> {
    const state = this.stateOf(handle);
    return state.memory.load();
  }

  /** @internal */
  saveGroup(group: number, handle: GroupStorage<T, D>, batch: StorageBatch<T, D>): Promise<void> {
    let state: GroupState<T, D>;
    let record: Buffer;
    try {
      state = this.stateOf(handle);
      if (this.failure !== undefined) throw this.failure;
      // Nothing to keep: the group's previous save has resolved, so this one is durable already.
      const empty = batch.append === undefined || batch.append.length === 0;
      if (empty && !batch.hardState && batch.truncateFrom === undefined && !batch.snapshot) return Promise.resolve();
      record = encodeGroupRecord(group, batch, false, this.options.codec);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.enqueue(record, async () => {
      await state.memory.save(batch);
      state.written = true;
    });
  }

  private stateOf(handle: GroupStorage<T, D>): GroupState<T, D> {
    if (this.phase !== 'open') throw new Error(`SharedLog: group ${handle.group} used when the log is ${this.phase}`);
    const state = this.handles.get(handle);
    if (state === undefined || handle.closed) throw new Error(`SharedLog: group ${handle.group}: handle closed`);
    if (state.removed) throw new Error(`SharedLog: group ${handle.group} was removed`);
    return state;
  }

  private enqueue(record: Buffer, apply: () => Promise<void>): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.push({ record, apply, resolve, reject });
      this.schedule();
    });
  }

  /** Flushes at the end of this turn of the event loop, when the saves of every group are in. */
  private schedule(): void {
    if (this.scheduled || this.writing !== undefined) return;
    this.scheduled = true;
    setImmediate(() => void this.flush());
  }

  private flush(): Promise<void> {
    this.scheduled = false;
    if (this.writing !== undefined || this.pending.length === 0) return this.writing ?? Promise.resolve();
    const batch = this.pending;
    this.pending = [];
    const run = this.write(batch).finally(() => {
      this.writing = undefined;
      if (this.pending.length > 0) this.schedule();
    });
    this.writing = run;
    return run;
  }

  /** One group commit: one write and one fdatasync for every save in `batch`. Never rejects. */
  private async write(batch: Pending[]): Promise<void> {
    try {
      if (this.failure !== undefined) throw this.failure;
      if (this.activeSize >= this.rollAt) await this.checkpoint();
      await this.append(
        encodeOuterRecord(
          WRITE_KIND,
          batch.map((p) => p.record),
        ),
      );
      for (const p of batch) await p.apply();
      this.stats.saves += batch.length;
    } catch (err) {
      this.failure ??= err;
      for (const p of batch) p.reject(this.failure);
      for (const p of this.pending.splice(0)) p.reject(this.failure);
      return;
    }
    for (const p of batch) p.resolve();
  }

  private async append(record: Buffer): Promise<void> {
    await writeAll(this.active!, record, this.activeSize);
    this.stats.writes++;
    if (this.options.fsync) {
      await this.active!.datasync();
      this.stats.syncs++;
    }
    this.activeSize += record.length;
  }

  /**
   * Starts a new segment with every written group's whole state, then deletes the older
   * segments: once the checkpoint is durable nothing in them is needed.
   */
  private async checkpoint(): Promise<void> {
    const seq = this.segments[this.segments.length - 1]! + 1;
    const handle = await open(this.segmentPath(seq), constants.O_RDWR | constants.O_CREAT | constants.O_EXCL);
    if (this.options.fsync) await syncDir(this.realDir);
    const old = this.active!;
    this.active = handle;
    this.activeSize = 0;
    this.segments.push(seq);
    await old.close();
    const records: Buffer[] = [];
    for (const [id, state] of this.groups) {
      if (!state.written) continue;
      const s = await state.memory.load();
      const batch = { hardState: { term: s.term, votedFor: s.votedFor }, append: s.entries, snapshot: s.snapshot };
      records.push(encodeGroupRecord(id, batch, true, this.options.codec));
    }
    const record = encodeOuterRecord(CHECKPOINT_KIND, records);
    await this.append(record);
    this.stats.checkpoints++;
    this.rollAt = Math.max(this.options.segmentBytes, 2 * record.length);
    for (const old of this.segments.slice(0, -1)) await unlinkIfPresent(this.segmentPath(old));
    this.segments = [seq];
  }

  private segmentPath(seq: number): string {
    return path.join(this.realDir, segmentName(seq));
  }
}
