// Reading a FileStorage directory back: the format mark, the snapshot file, the segments in
// order. A torn tail (a save cut short by a crash) is cut off and reported; any other damage is
// corruption and refused, since a silently shortened log would lose acknowledged saves.
import { open, readdir, readFile, stat } from 'node:fs/promises';
import * as path from 'node:path';
import type { Codec } from '../core/codec.js';
import type { CoreSnapshot, Entry } from '../core/message.js';
import type { PersistentState } from '../core/storage.js';
import type { ReplicaId } from '../core/types.js';
import {
  atOrAfter,
  decodeBatchPart,
  decodeSnapshotPart,
  F_COLUMNS,
  F_HARD,
  F_SNAP,
  FORMAT_FILE,
  FORMAT_TEXT,
  FORMAT_VERSION,
  knownKind,
  LOG_FLAGS,
  OLDEST_FORMAT,
  parseRecord,
  SEGMENT_NAME,
  segmentName,
  SNAPSHOT_FILE,
  SNAPSHOT_KIND,
  SNAPSHOT_TMP,
  type Position,
  type Segment,
} from './file-format.js';
import { CorruptStorageError, StorageFormatError } from './file-errors.js';
import { syncDir, truncateFile, unlinkIfPresent, writeFileAtomic } from './fs-helpers.js';
import { scanRecords } from './record-scan.js';

/** What {@link FileStorage.load} found and repaired when it opened the directory. */
export interface FileStorageRecovery {
  /** Bytes of an incomplete or damaged last record cut from the end of the log; 0 if none. */
  tornTailBytes: number;
  /** The segment file that was cut, if any. */
  file: string | undefined;
}

/** How to read a directory back. */
export interface RecoveryOptions {
  readonly codec: Codec;
  /** Whether repairs are fsynced. */
  readonly fsync: boolean;
  readonly onWarning: ((message: string) => void) | undefined;
}

/** A directory read back: the state to hand the replica, and where the log goes on. */
export interface Recovered<T, D> {
  readonly state: PersistentState<T, D>;
  /** The segments, ascending; the last one is where saves go on. */
  readonly segments: Segment[];
  /** The valid length of the last segment: where the next record goes. */
  readonly activeSize: number;
  /** The log's last record, which the next snapshot file names. */
  readonly lastRecord: Position | undefined;
  readonly recovery: FileStorageRecovery;
}

/**
 * One reading of a locked directory; its fields are what the segments read so far say. Make one
 * per load: {@link DirectoryReader.readAll} marks a new directory with the format, and rejects
 * with {@link StorageFormatError} for another format or {@link CorruptStorageError} for damage
 * beyond a torn tail. {@link DirectoryReader.recovery} says what it repaired, even if it then
 * rejects.
 */
export class DirectoryReader<T, D> {
  private readonly codec: Codec;
  private readonly fsync: boolean;
  private readonly onWarning: ((message: string) => void) | undefined;
  /** What this reading repaired so far. */
  recovery: FileStorageRecovery = { tornTailBytes: 0, file: undefined };
  private term = 0;
  private votedFor: ReplicaId | undefined = undefined;
  private segments: Segment[] = [];
  private lastRecord: Position | undefined;
  /** The format of the directory's mark (the current one for a new directory). */
  private formatFound = FORMAT_VERSION;

  constructor(
    private readonly realDir: string,
    options: RecoveryOptions,
  ) {
    this.codec = options.codec;
    this.fsync = options.fsync;
    this.onWarning = options.onWarning;
  }

  /** Reads the directory; repairs a torn tail. */
  async readAll(secondPass = false): Promise<Recovered<T, D>> {
    const dir = this.realDir;
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
    if (
      lastHasSnap &&
      unfinished !== undefined &&
      !(unfinished.seq === snap?.last.seq && unfinished.offset === snap.last.offset)
    ) {
      // The batch's snapshot never reached the disk: undo the rest of that batch too.
      if (secondPass)
        throw new CorruptStorageError(
          this.segmentPath(unfinished.seq),
          unfinished.offset,
          'the snapshot file does not match the log',
        );
      const file = this.segmentPath(unfinished.seq);
      const bytes = (await stat(file)).size - unfinished.offset;
      await this.cutTornTail(file, unfinished.offset, bytes, 'its batch carried a snapshot that was never written');
      return this.readAll(true);
    }
    // Read whole, an older directory is marked with the current format before FileStorage writes a
    // record with the new format's flag (format 2 is format 3 without F_COLUMNS): a tickraft that
    // reads format 2 only then refuses it rather than meet the flag.
    if (this.formatFound < FORMAT_VERSION) await this.markFormat();
    const after = snap?.snapshot.lastIncludedIndex ?? 0;
    const state: PersistentState<T, D> = {
      term: this.term,
      votedFor: this.votedFor,
      snapshot: snap?.snapshot,
      entries: log.slice(firstAbove(log, after)),
    };
    return {
      state,
      segments: this.segments,
      activeSize: size,
      lastRecord: this.lastRecord,
      recovery: this.recovery,
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
    const scan = scanRecords(buf, file, isLast, knownKind, (kind, p, off) => {
      if (kind === SNAPSHOT_KIND) throw new CorruptStorageError(file, off, 'snapshot record inside a log segment');
      const flags = kind & LOG_FLAGS;
      record = { seq, offset: off };
      hasSnap = (flags & F_SNAP) !== 0;
      if (off === 0 && !(flags & F_HARD))
        throw new CorruptStorageError(file, off, 'segment does not start with the hard state');
      const batch = decodeBatchPart<T>(flags, p, 0, this.codec, F_COLUMNS);
      if (batch.hardState !== undefined) ({ term: this.term, votedFor: this.votedFor } = batch.hardState);
      if (batch.truncateFrom !== undefined) log.length = firstAbove(log, batch.truncateFrom - 1);
      for (const e of batch.append ?? []) {
        // An append over existing indexes replaces them and all after, as in Raft.
        if (log.length > 0 && log[log.length - 1]!.index >= e.index) log.length = firstAbove(log, e.index - 1);
        log.push(e);
        if (e.index > segment.maxIndex) segment.maxIndex = e.index;
      }
    });
    const off = scan.end;
    if (scan.torn !== undefined) {
      if (named !== undefined && atOrAfter(named, { seq, offset: off })) {
        const what = named.offset === off ? 'names this record' : `names the record at offset ${named.offset}`;
        throw new CorruptStorageError(file, off, `${scan.torn}, yet the snapshot file ${what}, so it was durable`);
      }
      await this.cutTornTail(file, off, buf.length - off, scan.torn);
    }
    return { size: off, record, hasSnap };
  }

  private async cutTornTail(file: string, offset: number, bytes: number, reason: string): Promise<void> {
    await truncateFile(file, offset, this.fsync);
    this.recovery = { tornTailBytes: this.recovery.tornTailBytes + bytes, file };
    this.onWarning?.(
      `tickraft FileStorage: cut a torn tail of ${bytes} bytes at offset ${offset} of ${file} (${reason}); ` +
        'the save that wrote it had not been acknowledged',
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
    if (rec.kind !== SNAPSHOT_KIND) throw new CorruptStorageError(file, 0, 'not a snapshot record');
    if (rec.end !== buf.length)
      throw new CorruptStorageError(file, rec.end, 'unexpected bytes after the snapshot record');
    try {
      return decodeSnapshotPart<D>(rec.payload, this.codec);
    } catch (err) {
      throw new CorruptStorageError(file, 0, (err as Error).message);
    }
  }

  /**
   * Refuses a directory in a format it does not read; marks a new one (before its first segment
   * exists, so that a directory holding data without the mark can only be format 1).
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
      await this.markFormat();
      return;
    }
    const m = FORMAT_TEXT.exec(text);
    if (m === null) throw new CorruptStorageError(file, 0, 'not a FileStorage format file');
    this.formatFound = Number(m[1]);
    if (this.formatFound < OLDEST_FORMAT || this.formatFound > FORMAT_VERSION)
      throw new StorageFormatError(this.realDir, this.formatFound);
  }

  /** Marks the directory with the current format, written aside and renamed so it is never seen half written. */
  private async markFormat(): Promise<void> {
    await writeFileAtomic(
      path.join(this.realDir, FORMAT_FILE),
      `tickraft FileStorage format ${FORMAT_VERSION}\n`,
      this.fsync,
    );
    this.formatFound = FORMAT_VERSION;
  }

  private segmentPath(seq: number): string {
    return path.join(this.realDir, segmentName(seq));
  }
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
