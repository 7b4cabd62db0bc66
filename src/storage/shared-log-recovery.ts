// Reading a SharedLog directory back: the format mark, then the segments in order, every group
// rebuilt in memory from its records. A torn tail (a write cut short by a crash) is cut off and
// reported; any other damage is corruption and refused.
import { open, readdir, readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { CorruptStorageError } from './file-errors.js';
import { FORMAT_FILE, SEGMENT_NAME, segmentName } from './file-format.js';
import type { FileStorageRecovery, RecoveryOptions } from './file-recovery.js';
import { syncDir, truncateFile, unlinkIfPresent, writeFileAtomic } from './fs-helpers.js';
import { MemoryStorage } from './memory.js';
import { scanRecords } from './record-scan.js';
import {
  CHECKPOINT_KIND,
  decodeInnerRecords,
  knownOuterKind,
  SHARED_FORMAT_TEXT,
  SHARED_FORMAT_VERSION,
  SHARED_OLDEST_FORMAT,
  type InnerRecord,
} from './shared-log-format.js';

/** A SharedLog directory read back. */
export interface RecoveredLog<T, D> {
  /** Every group with data, its state in memory. */
  readonly groups: Map<number, MemoryStorage<T, D>>;
  /** The segments still needed, ascending; the last one is where writes go on. */
  readonly segments: number[];
  /** The valid length of the last segment: where the next record goes. */
  readonly activeSize: number;
  readonly recovery: FileStorageRecovery;
}

/**
 * Reads a locked SharedLog directory: marks a new one with the format, replays every segment,
 * cuts a torn tail, deletes the segments a checkpoint made obsolete. Rejects with
 * {@link CorruptStorageError} for damage beyond a torn tail or a directory of another kind.
 */
export async function readSharedLog<T, D>(dir: string, options: RecoveryOptions): Promise<RecoveredLog<T, D>> {
  const segPath = (seq: number): string => path.join(dir, segmentName(seq));
  const format = await checkFormat(dir, options.fsync);
  let seqs = (await readdir(dir))
    .map((name) => SEGMENT_NAME.exec(name))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
  if (seqs.length === 0) {
    seqs = [1];
    await (await open(segPath(1), 'wx')).close();
    if (options.fsync) await syncDir(dir);
  }
  seqs.forEach((seq, i) => {
    if (seq !== seqs[0]! + i) throw new CorruptStorageError(segPath(seqs[0]! + i), 0, 'segment is missing');
  });

  const groups = new Map<number, MemoryStorage<T, D>>();
  let recovery: FileStorageRecovery = { tornTailBytes: 0, file: undefined };
  // Segments before the last checkpoint are obsolete; without one, the log must start at 1.
  let checkpointSeq = seqs[0] === 1 ? 1 : undefined;
  let activeSize = 0;
  for (const [i, seq] of seqs.entries()) {
    const file = segPath(seq);
    const buf = await readFile(file);
    const records: Array<{ checkpoint: boolean; inner: InnerRecord<T, D>[] }> = [];
    const scan = scanRecords(buf, file, i === seqs.length - 1, knownOuterKind, (kind, payload) => {
      records.push({ checkpoint: kind === CHECKPOINT_KIND, inner: decodeInnerRecords<T, D>(payload, options.codec) });
    });
    for (const { checkpoint, inner } of records) {
      if (checkpoint) {
        groups.clear();
        checkpointSeq = seq;
      }
      for (const rec of inner) {
        if (rec.kind === 'remove') {
          groups.delete(rec.group);
          continue;
        }
        let group = groups.get(rec.group);
        if (group === undefined || rec.reset) groups.set(rec.group, (group = new MemoryStorage<T, D>()));
        await group.save(rec.batch);
      }
    }
    activeSize = scan.end;
    if (scan.torn !== undefined) {
      const bytes = buf.length - scan.end;
      await truncateFile(file, scan.end, options.fsync);
      recovery = { tornTailBytes: bytes, file };
      options.onWarning?.(
        `tickraft SharedLog: cut a torn tail of ${bytes} bytes at offset ${scan.end} of ${file} (${scan.torn}); ` +
          'the saves in it had not been acknowledged',
      );
    }
  }
  if (checkpointSeq === undefined)
    throw new CorruptStorageError(segPath(seqs[0]! - 1), 0, 'segment is missing (no segment left has a checkpoint)');
  // A checkpoint holds every group's whole state: what came before it is garbage (a deletion a
  // crash interrupted is finished here).
  for (const seq of seqs) if (seq < checkpointSeq) await unlinkIfPresent(segPath(seq));
  // Read whole: marked with this format before a record with its new flag is written (an older
  // tickraft then refuses the directory rather than meet the flag).
  if (format < SHARED_FORMAT_VERSION) await markFormat(dir, options.fsync);
  return { groups, segments: seqs.filter((seq) => seq >= checkpointSeq!), activeSize, recovery };
}

/** Refuses a directory that is not a SharedLog of a format this version reads; marks a new one. Returns its format. */
async function checkFormat(dir: string, fsync: boolean): Promise<number> {
  const file = path.join(dir, FORMAT_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    if ((await readdir(dir)).some((n) => SEGMENT_NAME.test(n)))
      throw new CorruptStorageError(file, 0, 'segments without a format file: not a SharedLog directory');
    await markFormat(dir, fsync);
    return SHARED_FORMAT_VERSION;
  }
  const m = SHARED_FORMAT_TEXT.exec(text);
  if (m === null) throw new CorruptStorageError(file, 0, 'not a SharedLog format file');
  const format = Number(m[1]);
  if (format < SHARED_OLDEST_FORMAT || format > SHARED_FORMAT_VERSION) {
    const reads = `this version reads formats ${SHARED_OLDEST_FORMAT} to ${SHARED_FORMAT_VERSION}`;
    throw new CorruptStorageError(file, 0, `SharedLog format ${m[1]}; ${reads}`);
  }
  return format;
}

/** Writes the format file, aside and renamed so that it is never seen half written. */
async function markFormat(dir: string, fsync: boolean): Promise<void> {
  await writeFileAtomic(path.join(dir, FORMAT_FILE), `tickraft SharedLog format ${SHARED_FORMAT_VERSION}\n`, fsync);
}
