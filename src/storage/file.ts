import { constants, existsSync, mkdirSync, readFileSync, realpathSync } from 'node:fs';
import { link, open, readdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import type { CoreSnapshot, Entry } from '../core/message.js';
import type { ReplicaId } from '../core/types.js';
import type { PersistentState, Storage, StorageBatch } from '../core/storage.js';
import { jsonStorageCodec, type StorageCodec } from './codec.js';
import { crc32 } from './crc32.js';

/*
 * On-disk format (all integers little-endian).
 *
 * Directory: `FORMAT` (the format version, written before anything else), `LOCK` (owner),
 * `log-<seq, 16 digits>.seg` (the log, seq counts up from 1), `snapshot` (latest snapshot),
 * transient `snapshot.tmp`, `FORMAT.tmp` and `LOCK.*` files. A directory with a segment or a
 * snapshot but no `FORMAT` was written by format 1 (whose snapshots did not keep the members).
 *
 * Every record, in segments and in the snapshot file, is framed as
 *   u32 payloadLength | u8 kind | 3 zero bytes | u32 crc32(payload) | u32 crc32(previous 12 bytes)
 * followed by the payload. The header has its own checksum so that a damaged length is caught
 * before it is trusted, and so that a scan can cheaply recognise a real record at any offset.
 *
 * One save() is one log record (kind 0x40 | flags), so a crash leaves either all of it or a torn
 * tail. Its payload holds, in order and only when present:
 *   HARD: f64 term, VOTE: f64 votedFor, TRUNC: f64 truncateFrom, ENTRIES: codec(entry array).
 * Flag SNAP (no payload) says the batch also carries a snapshot, written after the record. The
 * snapshot file names the log position (segment, offset) of the last record when it was
 * written; if the log's last record has SNAP but the snapshot file does not name it, the crash
 * came between the two and load() cuts the record, so that the whole batch, snapshot included,
 * is all-or-nothing. Half a batch is not harmless: {truncateFrom, snapshot} from
 * InstallSnapshot, cut after the truncation, would lose acknowledged entries. Conversely, the
 * record a snapshot file names was durable before the snapshot was written: if it is damaged or
 * missing, that is corruption (CorruptStorageError), never a torn tail to cut.
 * The hard state lives in the log rather than in a file of its own because a separate file
 * needs temp + fsync + rename + directory fsync, that is two to three extra fsyncs in exactly
 * the ticks (elections) where latency matters, while in the log it shares the batch's single
 * fsync. So that deleting old segments cannot lose it, the first record of every segment
 * carries the then-current hard state.
 *
 * The snapshot file is one record of kind 0x20: f64 lastIncludedIndex, f64 lastIncludedTerm,
 * f64 keepFrom (the first segment still needed; older ones are deleted), f64 segment and
 * f64 offset of the log's last record (-1, -1 if none), f64 1 if data is present (0 for
 * undefined), f64 count of members (-1 if the snapshot has none), count × f64 member id,
 * codec(data). Entries, with every field (`noop`, `config`), go through the codec.
 */

const HEADER_BYTES = 16;
const LOG_KIND = 0x40;
const LOG_FLAGS = 0x1f;
const F_HARD = 1;
const F_VOTE = 2;
const F_TRUNC = 4;
const F_ENTRIES = 8;
const F_SNAP = 16;
const SNAPSHOT_KIND = 0x20;
const SNAPSHOT_FIXED = 56;
const SEGMENT_NAME = /^log-(\d{16})\.seg$/;
const SNAPSHOT_FILE = 'snapshot';
const SNAPSHOT_TMP = 'snapshot.tmp';
const LOCK_FILE = 'LOCK';
const FORMAT_FILE = 'FORMAT';
/** Format 2 added a snapshot's members; format 1 had no FORMAT file. */
const FORMAT_VERSION = 2;
const FORMAT_TEXT = /^tickraft FileStorage format (\d+)\n$/;

/** Options of {@link FileStorage}. */
export interface FileStorageOptions {
  /** Serializes log entries and snapshot data. Default {@link jsonStorageCodec}. */
  codec?: StorageCodec;
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

/** What {@link FileStorage.load} found and repaired when it opened the directory. */
export interface FileStorageRecovery {
  /** Bytes of an incomplete or damaged last record cut from the end of the log; 0 if none. */
  tornTailBytes: number;
  /** The segment file that was cut, if any. */
  file: string | undefined;
}

/**
 * The storage directory holds data that a torn write cannot explain: a damaged record with
 * valid data after it, a damaged record in a segment other than the last, or a missing segment.
 * {@link FileStorage.load} refuses rather than return a silently shortened log.
 */
export class CorruptStorageError extends Error {
  /** Always `'CorruptStorageError'`. */
  override readonly name = 'CorruptStorageError';
  /** The damaged file. */
  readonly file: string;
  /** Byte offset in {@link CorruptStorageError.file} of the damaged record (0 for a whole-file problem). */
  readonly offset: number;
  /**
   * @param file - The damaged file.
   * @param offset - Byte offset of the damaged record.
   * @param reason - What is wrong there.
   */
  constructor(file: string, offset: number, reason: string) {
    super(`corrupt storage: ${file} at offset ${offset}: ${reason}`);
    this.file = file;
    this.offset = offset;
  }
}

/**
 * The storage directory was written in a format this version of {@link FileStorage} does not
 * read. Format 1 (before the `FORMAT` file) did not keep a snapshot's members: a replica that
 * loaded it could restart with the wrong membership. {@link FileStorage.load} refuses it.
 */
export class StorageFormatError extends Error {
  /** Always `'StorageFormatError'`. */
  override readonly name = 'StorageFormatError';
  /** The directory. */
  readonly dir: string;
  /** The format version found. */
  readonly version: number;
  /**
   * @param dir - The directory.
   * @param version - The format version found in it.
   */
  constructor(dir: string, version: number) {
    super(
      `storage directory ${dir} is in FileStorage format ${version}; ` +
        `this version reads format ${FORMAT_VERSION} only. ` +
        (version < FORMAT_VERSION
          ? 'Format 1 did not keep the membership in snapshots: remove the directory and add the ' +
            'member back under a new id, or run it with the tickraft version that wrote it.'
          : 'Upgrade tickraft to read it.'),
    );
    this.dir = dir;
    this.version = version;
  }
}

/** Another live {@link FileStorage}, in this process or another, has the directory open. */
export class StorageLockedError extends Error {
  /** Always `'StorageLockedError'`. */
  override readonly name = 'StorageLockedError';
  /** The directory that is locked. */
  readonly dir: string;
  /** The process that holds the lock, when known. */
  readonly pid: number | undefined;
  /**
   * @param dir - The locked directory.
   * @param pid - The holder's process id, when known.
   */
  constructor(dir: string, pid: number | undefined) {
    super(
      pid === process.pid
        ? `storage directory ${dir} is already open in this process; close() the other FileStorage first`
        : `storage directory ${dir} is locked by process ${pid ?? '(unknown)'}, which is still running`,
    );
    this.dir = dir;
    this.pid = pid;
  }
}

interface Segment {
  seq: number;
  /** The largest index ever appended in this segment: it may go once a snapshot covers that. */
  maxIndex: number;
}

/** Where a log record is: segment number and byte offset. */
interface Position {
  seq: number;
  offset: number;
}

interface LockOwner {
  pid: number;
  /** The process's start time (Linux), so that a recycled pid is not mistaken for the owner. */
  start: string | undefined;
  token: string;
}

type ParsedRecord =
  | { ok: true; kind: number; payload: Buffer; end: number }
  | { ok: false; reason: string; fatal: boolean; resumeAt: number | undefined };

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
  private readonly codec: StorageCodec;
  private readonly segmentBytes: number;
  private readonly fsync: boolean;
  private readonly onWarning: ((message: string) => void) | undefined;
  private phase: 'new' | 'open' | 'closed' = 'new';
  private realDir = '';
  private owner: LockOwner | undefined;
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
    this.codec = options.codec ?? jsonStorageCodec;
    this.segmentBytes = options.segmentBytes ?? 64 * 1024 * 1024;
    this.fsync = options.fsync ?? true;
    this.onWarning = options.onWarning;
    if (!(this.segmentBytes > 0)) throw new RangeError('FileStorage: segmentBytes must be positive');
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
    if (this.phase !== 'open') throw new Error(`FileStorage: save() ${this.phase === 'new' ? 'before load()' : 'after close()'}`);
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
    const handle = await open(this.segmentPath(seq), constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | this.syncFlag());
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
    // Codecs need not spell `undefined` (JSON cannot), so its absence is a flag instead.
    const hasData = snapshot.data !== undefined;
    const data = hasData ? this.codec.encode(snapshot.data) : new Uint8Array(0);
    const members = snapshot.members;
    const membersBytes = 8 * (members?.length ?? 0);
    const last = this.lastRecord;
    const record = frame(SNAPSHOT_KIND, SNAPSHOT_FIXED + membersBytes + data.length, (buf, at) => {
      buf.writeDoubleLE(snapshot.lastIncludedIndex, at);
      buf.writeDoubleLE(snapshot.lastIncludedTerm, at + 8);
      buf.writeDoubleLE(keepFrom, at + 16);
      buf.writeDoubleLE(last?.seq ?? -1, at + 24);
      buf.writeDoubleLE(last?.offset ?? -1, at + 32);
      buf.writeDoubleLE(hasData ? 1 : 0, at + 40);
      buf.writeDoubleLE(members?.length ?? -1, at + 48);
      members?.forEach((id, i) => buf.writeDoubleLE(id, at + SNAPSHOT_FIXED + 8 * i));
      buf.set(data, at + SNAPSHOT_FIXED + membersBytes);
    });
    const tmp = path.join(this.realDir, SNAPSHOT_TMP);
    const handle = await open(tmp, 'w');
    try {
      await writeAll(handle, record, 0);
      if (this.fsync) await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, path.join(this.realDir, SNAPSHOT_FILE));
    if (this.fsync) await syncDir(this.realDir);
    // Once the snapshot naming keepFrom is durable the older segments are garbage; if deleting
    // them is interrupted, the next load finishes the job.
    for (const seg of this.segments.slice(0, keep)) await unlinkIfPresent(this.segmentPath(seg.seq));
    this.segments = this.segments.slice(keep);
  }

  private async readAll(secondPass = false): Promise<PersistentState<T, D>> {
    const dir = this.realDir;
    if (!secondPass) this.recovery = { tornTailBytes: 0, file: undefined };
    await unlinkIfPresent(path.join(dir, SNAPSHOT_TMP));
    if (!secondPass) await this.checkFormat();
    const snap = await this.readSnapshot();
    const keepFrom = snap?.keepFrom ?? 1;
    let seqs = (await readdir(dir))
      .map((name) => SEGMENT_NAME.exec(name))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
    for (const seq of seqs) if (seq < keepFrom) await unlinkIfPresent(this.segmentPath(seq));
    seqs = seqs.filter((seq) => seq >= keepFrom);
    if (seqs.length === 0) {
      if (snap !== undefined) throw new CorruptStorageError(this.segmentPath(keepFrom), 0, 'segment is missing');
      seqs = [1];
      await (await open(this.segmentPath(1), 'wx')).close();
      if (this.fsync) await syncDir(dir);
    }
    seqs.forEach((seq, i) => {
      if (seq !== keepFrom + i) throw new CorruptStorageError(this.segmentPath(keepFrom + i), 0, 'segment is missing');
    });

    const log: Entry<T>[] = [];
    this.term = 0;
    this.votedFor = undefined;
    this.segments = [];
    this.lastRecord = undefined;
    let lastHasSnap = false;
    let size = 0;
    for (let i = 0; i < seqs.length; i++) {
      const last = await this.replaySegment(seqs[i]!, i === seqs.length - 1, log, snap?.last);
      size = last.size;
      if (last.record !== undefined) [this.lastRecord, lastHasSnap] = [last.record, last.hasSnap];
    }
    const named = snap?.last;
    if (named !== undefined && named.seq >= 0 && !atOrAfter(this.lastRecord, named)) {
      // The log ends cleanly, but before the record the snapshot file names: records are missing.
      const why = 'the log ends before the record the snapshot file names';
      throw new CorruptStorageError(this.segmentPath(named.seq), named.offset, why);
    }
    const unfinished = this.lastRecord;
    if (lastHasSnap && unfinished !== undefined && !(unfinished.seq === snap?.last.seq && unfinished.offset === snap.last.offset)) {
      // The batch's snapshot never reached the disk: undo the rest of that batch too.
      if (secondPass) throw new CorruptStorageError(this.segmentPath(unfinished.seq), unfinished.offset, 'the snapshot file does not match the log');
      const file = this.segmentPath(unfinished.seq);
      const bytes = (await stat(file)).size - unfinished.offset;
      await this.cutTornTail(file, unfinished.offset, bytes, 'its batch carried a snapshot that was never written');
      return this.readAll(true);
    }
    this.active = await open(this.segmentPath(seqs[seqs.length - 1]!), constants.O_RDWR | this.syncFlag());
    this.activeSize = size;
    const after = snap?.snapshot.lastIncludedIndex ?? 0;
    return {
      term: this.term,
      votedFor: this.votedFor,
      snapshot: snap?.snapshot,
      entries: log.slice(firstAbove(log, after)),
    };
  }

  /**
   * Replays one segment into `log`; returns the length of its valid prefix and its last record.
   * `named` is the record the snapshot file names: it was durable, so it cannot be a torn tail.
   */
  private async replaySegment(
    seq: number,
    isLast: boolean,
    log: Entry<T>[],
    named: Position | undefined,
  ): Promise<{ size: number; record: Position | undefined; hasSnap: boolean }> {
    let record: Position | undefined;
    let hasSnap = false;
    const file = this.segmentPath(seq);
    const buf = await readFile(file);
    const segment: Segment = { seq, maxIndex: 0 };
    this.segments.push(segment);
    let off = 0;
    while (off < buf.length) {
      const rec = parseRecord(buf, off);
      if (!rec.ok) {
        if (!isLast || rec.fatal) throw new CorruptStorageError(file, off, rec.reason);
        const later = rec.resumeAt === undefined ? -1 : findRecord(buf, rec.resumeAt);
        if (later >= 0) throw new CorruptStorageError(file, off, `${rec.reason}, yet a valid record follows at offset ${later}`);
        if (named !== undefined && atOrAfter(named, { seq, offset: off })) {
          const what = named.offset === off ? 'names this record' : `names the record at offset ${named.offset}`;
          throw new CorruptStorageError(file, off, `${rec.reason}, yet the snapshot file ${what}, so it was durable`);
        }
        await this.cutTornTail(file, off, buf.length - off, rec.reason);
        break;
      }
      if (rec.kind === SNAPSHOT_KIND) throw new CorruptStorageError(file, off, 'snapshot record inside a log segment');
      const flags = rec.kind & LOG_FLAGS;
      record = { seq, offset: off };
      hasSnap = (flags & F_SNAP) !== 0;
      if (off === 0 && !(flags & F_HARD)) throw new CorruptStorageError(file, off, 'segment does not start with the hard state');
      try {
        const p = rec.payload;
        let at = 0;
        if (flags & F_HARD) {
          this.term = p.readDoubleLE(at);
          at += 8;
          this.votedFor = undefined;
          if (flags & F_VOTE) {
            this.votedFor = p.readDoubleLE(at);
            at += 8;
          }
        }
        if (flags & F_TRUNC) {
          log.length = firstAbove(log, p.readDoubleLE(at) - 1);
          at += 8;
        }
        if (flags & F_ENTRIES) {
          const entries = this.codec.decode(p.subarray(at));
          if (!Array.isArray(entries)) throw new Error('entries are not an array');
          for (const e of entries as Entry<T>[]) {
            if (typeof e?.index !== 'number') throw new Error('an entry has no numeric index');
            // An append over existing indexes replaces them and all after, as in Raft.
            if (log.length > 0 && log[log.length - 1]!.index >= e.index) log.length = firstAbove(log, e.index - 1);
            log.push(e);
            if (e.index > segment.maxIndex) segment.maxIndex = e.index;
          }
        }
      } catch (err) {
        if (err instanceof CorruptStorageError) throw err;
        throw new CorruptStorageError(file, off, `record passed its checksum but cannot be decoded: ${(err as Error).message}`);
      }
      off = rec.end;
    }
    return { size: off, record, hasSnap };
  }

  private async cutTornTail(file: string, offset: number, bytes: number, reason: string): Promise<void> {
    const handle = await open(file, 'r+');
    try {
      await handle.truncate(offset);
      if (this.fsync) await handle.sync();
    } finally {
      await handle.close();
    }
    this.recovery = { tornTailBytes: this.recovery.tornTailBytes + bytes, file };
    this.onWarning?.(
      `tickraft FileStorage: cut a torn tail of ${bytes} bytes at offset ${offset} of ${file} (${reason}); the save that wrote it had not been acknowledged`,
    );
  }

  private async readSnapshot(): Promise<{ snapshot: CoreSnapshot<D>; keepFrom: number; last: Position } | undefined> {
    const file = path.join(this.realDir, SNAPSHOT_FILE);
    let buf: Buffer;
    try {
      buf = await readFile(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    // Written to a temporary file and renamed, so it is whole or absent: any damage is real.
    const rec = parseRecord(buf, 0);
    if (!rec.ok) throw new CorruptStorageError(file, 0, rec.reason);
    if (rec.kind !== SNAPSHOT_KIND || rec.payload.length < SNAPSHOT_FIXED) throw new CorruptStorageError(file, 0, 'not a snapshot record');
    if (rec.end !== buf.length) throw new CorruptStorageError(file, rec.end, 'unexpected bytes after the snapshot record');
    const count = rec.payload.readDoubleLE(48);
    const dataAt = SNAPSHOT_FIXED + 8 * Math.max(count, 0);
    if (!Number.isInteger(count) || count < -1 || dataAt > rec.payload.length) {
      throw new CorruptStorageError(file, 0, `snapshot record has ${count} members, which do not fit`);
    }
    const members =
      count < 0 ? undefined : Array.from({ length: count }, (_, i) => rec.payload.readDoubleLE(SNAPSHOT_FIXED + 8 * i));
    let data: D;
    try {
      data = (rec.payload.readDoubleLE(40) === 0 ? undefined : this.codec.decode(rec.payload.subarray(dataAt))) as D;
    } catch (err) {
      throw new CorruptStorageError(file, 0, `snapshot data cannot be decoded: ${(err as Error).message}`);
    }
    const p = rec.payload;
    const base = { lastIncludedIndex: p.readDoubleLE(0), lastIncludedTerm: p.readDoubleLE(8), data };
    return {
      snapshot: members === undefined ? base : { ...base, members },
      keepFrom: rec.payload.readDoubleLE(16),
      last: { seq: rec.payload.readDoubleLE(24), offset: rec.payload.readDoubleLE(32) },
    };
  }

  /**
   * Refuses a directory in another format; marks a new one (before its first segment exists, so
   * that a directory holding data without the mark can only be format 1).
   */
  private async checkFormat(): Promise<void> {
    const file = path.join(this.realDir, FORMAT_FILE);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      const names = await readdir(this.realDir);
      if (names.some((n) => n === SNAPSHOT_FILE || SEGMENT_NAME.test(n))) throw new StorageFormatError(this.realDir, 1);
      // Written aside and renamed, so FORMAT is never seen half written.
      const tmp = `${file}.tmp`;
      const handle = await open(tmp, 'w');
      try {
        await handle.writeFile(`tickraft FileStorage format ${FORMAT_VERSION}\n`);
        if (this.fsync) await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(tmp, file);
      if (this.fsync) await syncDir(this.realDir);
      return;
    }
    const m = FORMAT_TEXT.exec(text);
    if (m === null) throw new CorruptStorageError(file, 0, 'not a FileStorage format file');
    if (Number(m[1]) !== FORMAT_VERSION) throw new StorageFormatError(this.realDir, Number(m[1]));
  }

  /**
   * O_DSYNC makes each write return only once its data is durable: one system call (and one trip
   * through libuv's thread pool) per save instead of write + fdatasync.
   */
  private syncFlag(): number {
    return this.fsync ? ((constants as { O_DSYNC?: number }).O_DSYNC ?? 0) : 0;
  }

  private segmentPath(seq: number): string {
    return path.join(this.realDir || this.dir, `log-${String(seq).padStart(16, '0')}.seg`);
  }

  private async closeActive(): Promise<void> {
    const handle = this.active;
    this.active = undefined;
    await handle?.close();
  }

  private async lock(): Promise<void> {
    makeDirectory(this.dir);
    this.realDir = realpathSync(this.dir);
    // Claimed synchronously, before any await, so two loads racing in one process cannot both
    // pass; the lock file then settles the question between processes.
    const held = openDirs();
    if (held.has(this.realDir)) throw new StorageLockedError(this.realDir, process.pid);
    const me: LockOwner = { pid: process.pid, start: processStart(process.pid), token: randomBytes(8).toString('hex') };
    held.set(this.realDir, me.token);
    try {
      await acquireLockFile(this.realDir, me);
      this.owner = me;
    } catch (err) {
      held.delete(this.realDir);
      throw err;
    }
  }

  private async unlock(): Promise<void> {
    const me = this.owner;
    if (me === undefined) return;
    this.owner = undefined;
    const lockPath = path.join(this.realDir, LOCK_FILE);
    try {
      if ((await readLock(lockPath))?.token === me.token) await unlinkIfPresent(lockPath);
    } finally {
      if (openDirs().get(this.realDir) === me.token) openDirs().delete(this.realDir);
    }
  }
}

function encodeLogRecord(
  hard: { term: number; votedFor: ReplicaId | undefined } | undefined,
  truncateFrom: number | undefined,
  append: readonly unknown[] | undefined,
  snapshotFollows: boolean,
  codec: StorageCodec,
): Buffer {
  let flags = snapshotFollows ? F_SNAP : 0;
  let fixed = 0;
  if (hard !== undefined) {
    flags |= F_HARD;
    fixed += 8;
    if (hard.votedFor !== undefined) {
      flags |= F_VOTE;
      fixed += 8;
    }
  }
  if (truncateFrom !== undefined) {
    flags |= F_TRUNC;
    fixed += 8;
  }
  const entries = append !== undefined ? codec.encode(append) : undefined;
  if (entries !== undefined) flags |= F_ENTRIES;
  return frame(LOG_KIND | flags, fixed + (entries?.length ?? 0), (buf, at) => {
    if (hard !== undefined) {
      buf.writeDoubleLE(hard.term, at);
      at += 8;
      if (hard.votedFor !== undefined) {
        buf.writeDoubleLE(hard.votedFor, at);
        at += 8;
      }
    }
    if (truncateFrom !== undefined) {
      buf.writeDoubleLE(truncateFrom, at);
      at += 8;
    }
    if (entries !== undefined) buf.set(entries, at);
  });
}

/** Builds header + payload in one buffer, so that a record goes to disk in one write. */
function frame(kind: number, payloadBytes: number, fill: (buf: Buffer, at: number) => void): Buffer {
  const buf = Buffer.allocUnsafe(HEADER_BYTES + payloadBytes);
  fill(buf, HEADER_BYTES);
  buf.writeUInt32LE(payloadBytes, 0);
  buf.writeUInt32LE(kind, 4); // kind in byte 4, zeros in 5..7
  buf.writeUInt32LE(crc32(buf.subarray(HEADER_BYTES)), 8);
  buf.writeUInt32LE(crc32(buf.subarray(0, 12)), 12);
  return buf;
}

function knownKind(kind: number): boolean {
  if (kind === SNAPSHOT_KIND) return true;
  const flags = kind & LOG_FLAGS;
  return (kind & ~LOG_FLAGS) === LOG_KIND && flags !== 0 && !(flags & F_VOTE && !(flags & F_HARD));
}

function parseRecord(buf: Buffer, off: number): ParsedRecord {
  if (buf.length - off < HEADER_BYTES) return { ok: false, reason: 'incomplete record header', fatal: false, resumeAt: undefined };
  if (crc32(buf.subarray(off, off + 12)) !== buf.readUInt32LE(off + 12))
    return { ok: false, reason: 'bad header checksum', fatal: false, resumeAt: off + 1 };
  const kind = buf[off + 4]!;
  if (!knownKind(kind) || buf[off + 5] !== 0 || buf[off + 6] !== 0 || buf[off + 7] !== 0)
    return { ok: false, reason: `unknown record kind 0x${kind.toString(16)}`, fatal: true, resumeAt: undefined };
  const end = off + HEADER_BYTES + buf.readUInt32LE(off);
  if (end > buf.length) return { ok: false, reason: 'record runs past the end of the file', fatal: false, resumeAt: undefined };
  if (crc32(buf.subarray(off + HEADER_BYTES, end)) !== buf.readUInt32LE(off + 8))
    return { ok: false, reason: 'bad payload checksum', fatal: false, resumeAt: end };
  return { ok: true, kind, payload: buf.subarray(off + HEADER_BYTES, end), end };
}

/** The offset of the first valid record at or after `from`, or -1. */
function findRecord(buf: Buffer, from: number): number {
  for (let o = from; o + HEADER_BYTES <= buf.length; o++) {
    // Cheap byte tests first: most offsets fail them without computing a checksum.
    if (buf[o + 5] !== 0 || buf[o + 6] !== 0 || buf[o + 7] !== 0 || !knownKind(buf[o + 4]!)) continue;
    if (o + HEADER_BYTES + buf.readUInt32LE(o) > buf.length) continue;
    if (parseRecord(buf, o).ok) return o;
  }
  return -1;
}

/** Whether position `a` exists and is at or after `b` in the log. */
function atOrAfter(a: Position | undefined, b: Position): boolean {
  return a !== undefined && (a.seq > b.seq || (a.seq === b.seq && a.offset >= b.offset));
}

/** The position of the first entry with index > `index` in an index-sorted log. */
function firstAbove(log: readonly Entry<unknown>[], index: number): number {
  let lo = 0;
  let hi = log.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (log[mid]!.index <= index) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

async function writeAll(handle: FileHandle, buf: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesWritten } = await handle.write(buf, done, buf.length - done, position + done);
    done += bytesWritten;
  }
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function unlinkIfPresent(file: string): Promise<void> {
  try {
    await unlink(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

/**
 * `mkdir -p`, without Node's recursive mkdir: on Node 20 it loops forever, synchronously (so
 * not even a signal gets through), where mkdir fails with ENOENT under a parent that exists,
 * as in /proc. Here that ENOENT is thrown.
 */
function makeDirectory(dir: string): void {
  try {
    mkdirSync(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return;
    const parent = path.dirname(dir);
    if (code !== 'ENOENT' || parent === dir || existsSync(parent)) throw err;
    makeDirectory(parent);
    makeDirectory(dir); // the parent exists now: this ends
  }
}

/** Directories open in this process, shared by every copy of this module that gets loaded. */
function openDirs(): Map<string, string> {
  const g = globalThis as { [OPEN_DIRS]?: Map<string, string> };
  return (g[OPEN_DIRS] ??= new Map());
}
const OPEN_DIRS = Symbol.for('tickraft.FileStorage.openDirs');

async function acquireLockFile(dir: string, me: LockOwner): Promise<void> {
  const lockPath = path.join(dir, LOCK_FILE);
  // Written aside and hard-linked into place, so LOCK never exists without its content and a
  // half-created lock cannot be mistaken for a stale one.
  const mine = `${lockPath}.${me.pid}.${me.token}`;
  await writeFile(mine, JSON.stringify(me));
  try {
    for (let attempt = 0; attempt < 10; attempt++) {
      try {
        await link(mine, lockPath);
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const holder = await readLock(lockPath);
      if (holder === null) continue; // vanished meanwhile: try again
      if (holder !== undefined && isAlive(holder)) throw new StorageLockedError(dir, holder.pid);
      // Stale. Move it aside rather than unlink it, so that of two processes taking over at
      // once only one removes it, and neither can remove a fresh lock the other just made.
      const aside = `${lockPath}.stale.${me.pid}.${me.token}`;
      try {
        await rename(lockPath, aside);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw err;
      }
      const moved = await readLock(aside);
      if (moved !== null && moved !== undefined && moved.token !== holder?.token && isAlive(moved)) {
        // We moved a lock a live process created after we read the stale one: put it back.
        await link(aside, lockPath).catch(() => undefined);
        await unlinkIfPresent(aside);
        throw new StorageLockedError(dir, moved.pid);
      }
      await unlinkIfPresent(aside);
    }
    throw new StorageLockedError(dir, undefined);
  } finally {
    await unlinkIfPresent(mine);
  }
}

/** The owner recorded in a lock file; undefined if unreadable (stale), null if the file is gone. */
async function readLock(file: string): Promise<LockOwner | undefined | null> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  try {
    const v = JSON.parse(text) as Partial<LockOwner>;
    if (typeof v.pid === 'number' && typeof v.token === 'string') return { pid: v.pid, start: v.start ?? undefined, token: v.token };
  } catch {
    // fall through: a lock file cut short by a machine crash
  }
  return undefined;
}

function isAlive(owner: LockOwner): boolean {
  // Our own pid with a token this process does not hold: a previous incarnation that had the
  // same pid (containers restart at the same pids), since every live lock here is in openDirs.
  if (owner.pid === process.pid) return [...openDirs().values()].includes(owner.token);
  try {
    process.kill(owner.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  const stat = processStat(owner.pid);
  if (stat === undefined) return true;
  // A zombie has exited and only awaits its parent's wait(): its lock is as stale as a corpse's.
  if (stat[0] === 'Z') return false;
  return owner.start === undefined || stat[19] === owner.start;
}

/** Start time of a process in clock ticks since boot (Linux /proc), to tell recycled pids apart. */
function processStart(pid: number): string | undefined {
  return processStat(pid)?.[19];
}

/** The fields of /proc/<pid>/stat after the command name (state first), or undefined off Linux. */
function processStat(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}
