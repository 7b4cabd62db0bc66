// Reading one segment's records in order, with the torn-tail rule FileStorage and SharedLog share:
// a damaged record is a torn tail only in the last segment and only if no valid record follows it.
import { findRecord, parseRecord } from './file-format.js';
import { CorruptStorageError } from './file-errors.js';

/** Where a segment's valid records end, and why, if a torn tail follows them. */
export interface ScanEnd {
  /** The offset just past the last valid record. */
  readonly end: number;
  /** Why the bytes from `end` on are not a record (a torn tail to cut), if there are any. */
  readonly torn: string | undefined;
}

/**
 * Calls `visit` with every valid record of `buf` (segment `file`) in order. Throws
 * {@link CorruptStorageError} for damage a torn write cannot explain: a record of a kind `known`
 * rejects, damage in a segment other than the last (`isLast` false), or a valid record after
 * the damage. Errors `visit` throws are turned into a CorruptStorageError at that record.
 */
export function scanRecords(
  buf: Buffer,
  file: string,
  isLast: boolean,
  known: (kind: number) => boolean,
  visit: (kind: number, payload: Buffer, offset: number) => void,
): ScanEnd {
  let off = 0;
  while (off < buf.length) {
    const rec = parseRecord(buf, off, known);
    if (!rec.ok) {
      if (!isLast || rec.fatal) throw new CorruptStorageError(file, off, rec.reason);
      const later = rec.resumeAt === undefined ? -1 : findRecord(buf, rec.resumeAt, known);
      if (later >= 0)
        throw new CorruptStorageError(file, off, `${rec.reason}, yet a valid record follows at offset ${later}`);
      return { end: off, torn: rec.reason };
    }
    try {
      visit(rec.kind, rec.payload, off);
    } catch (err) {
      if (err instanceof CorruptStorageError) throw err;
      const why = `record passed its checksum but cannot be decoded: ${(err as Error).message}`;
      throw new CorruptStorageError(file, off, why);
    }
    off = rec.end;
  }
  return { end: off, torn: undefined };
}
