// The on-disk format of FileStorage: file names, the record framing and the payload layouts.
// Pure encoding and parsing, no I/O: file-recovery.ts reads a directory back with it.
import type { CoreSnapshot, Entry } from '../core/message.js';
import type { ReplicaId } from '../core/types.js';
import type { Codec } from '../core/codec.js';
import { fromEntryColumns, toEntryColumns } from '../encoding/entry-columns.js';
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
 *   HARD: f64 term, VOTE: f64 votedFor, TRUNC: f64 truncateFrom, ENTRIES: codec(entry array), or
 *   with flag COLUMNS (format 3) codec([first index, ...the entries' columns]) as
 *   src/encoding/entry-columns.ts lays them out: about half the encoding time of the array.
 * Entries that cannot go in columns (a field the core does not give an entry, say) keep the array.
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

/** Bytes of a record header. */
export const HEADER_BYTES = 16;
/** Kind of a log record, or-ed with its flags. */
export const LOG_KIND = 0x40;
/** The flag bits of a log record's kind. */
export const LOG_FLAGS = 0x3f;
/** Log record flag: the payload starts with the term. */
export const F_HARD = 1;
/** Log record flag: the vote follows the term. */
export const F_VOTE = 2;
/** Log record flag: a truncation point follows. */
export const F_TRUNC = 4;
/** Log record flag: codec-encoded entries end the payload. */
export const F_ENTRIES = 8;
/** Log record flag: the batch also carries a snapshot, written after the record. */
export const F_SNAP = 16;
/** Log record flag: the entries are in columns (format 3). */
export const F_COLUMNS = 32;
/** Kind of the snapshot file's record. */
export const SNAPSHOT_KIND = 0x20;
/** Bytes of the snapshot payload before the member ids. */
export const SNAPSHOT_FIXED = 56;
/** A segment file's name; the group is its sequence number. */
export const SEGMENT_NAME = /^log-(\d{16})\.seg$/;
/** The snapshot file's name. */
export const SNAPSHOT_FILE = 'snapshot';
/** Where a snapshot is written before it is renamed into place. */
export const SNAPSHOT_TMP = 'snapshot.tmp';
/** The lock file's name (see dir-lock.ts). */
export const LOCK_FILE = 'LOCK';
/** The format file's name. */
export const FORMAT_FILE = 'FORMAT';
/**
 * Format 3 added entries in columns (F_COLUMNS); format 2 added a snapshot's members; format 1 had
 * no FORMAT file.
 */
export const FORMAT_VERSION = 3;
/** The oldest format this version reads: a format-2 directory is format 3 without F_COLUMNS. */
export const OLDEST_FORMAT = 2;
/** The content of the format file; the group is the version. */
export const FORMAT_TEXT = /^tickraft FileStorage format (\d+)\n$/;

/** The name of segment `seq`. */
export const segmentName = (seq: number): string => `log-${String(seq).padStart(16, '0')}.seg`;

/** What the storage knows of one segment file. */
export interface Segment {
  seq: number;
  /** The largest index ever appended in this segment: it may go once a snapshot covers that. */
  maxIndex: number;
}

/** Where a log record is: segment number and byte offset. */
export interface Position {
  seq: number;
  offset: number;
}

/** A record read at an offset, or why none could be: `fatal` if it cannot be a torn write. */
export type ParsedRecord =
  | { ok: true; kind: number; payload: Buffer; end: number }
  | { ok: false; reason: string; fatal: boolean; resumeAt: number | undefined };

/** A payload part, sized before it is written into the record's one buffer. */
export interface PayloadPart {
  /** Its length in bytes. */
  readonly bytes: number;
  /** Writes it at `at`. */
  write(buf: Buffer, at: number): void;
}

/**
 * The hard-state, truncation and entries part of a save (see the format above), and its flags.
 * The entries go in columns when they can, and the flags then include `columnsFlag` (the log's
 * own flag bit for it: FileStorage's and SharedLog's kinds differ).
 */
export function batchPart(
  hard: { term: number; votedFor: ReplicaId | undefined } | undefined,
  truncateFrom: number | undefined,
  append: readonly unknown[] | undefined,
  codec: Codec,
  columnsFlag: number,
): PayloadPart & { flags: number } {
  let flags = 0;
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
  let entries: Uint8Array | undefined;
  if (append !== undefined) {
    const first = (append[0] as { index?: unknown } | undefined)?.index;
    const columns = typeof first === 'number' ? toEntryColumns(append, first) : undefined;
    entries = codec.encode(columns !== undefined ? [first, ...columns] : append);
    flags |= F_ENTRIES | (columns !== undefined ? columnsFlag : 0);
  }
  const write = (buf: Buffer, at: number): void => {
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
  };
  return { flags, bytes: fixed + (entries?.length ?? 0), write };
}

/** The record of one save (see the format above); `append` goes through the codec. */
export function encodeLogRecord(
  hard: { term: number; votedFor: ReplicaId | undefined } | undefined,
  truncateFrom: number | undefined,
  append: readonly unknown[] | undefined,
  snapshotFollows: boolean,
  codec: Codec,
): Buffer {
  const part = batchPart(hard, truncateFrom, append, codec, F_COLUMNS);
  return frame(LOG_KIND | part.flags | (snapshotFollows ? F_SNAP : 0), part.bytes, part.write);
}

/** What the payload of a save's record holds (the part {@link batchPart} wrote). */
export interface DecodedBatch<T> {
  hardState?: { term: number; votedFor: ReplicaId | undefined };
  truncateFrom?: number;
  append?: Entry<T>[];
}

/**
 * Reads back what {@link batchPart} wrote with `flags` (and `columnsFlag`, the one it was given),
 * from `at` to the end of `p`. Throws an Error saying what is wrong if the entries do not decode
 * to an array of entries.
 */
export function decodeBatchPart<T>(
  flags: number,
  p: Buffer,
  at: number,
  codec: Codec,
  columnsFlag: number,
): DecodedBatch<T> {
  const out: DecodedBatch<T> = {};
  if (flags & F_HARD) {
    const term = p.readDoubleLE(at);
    at += 8;
    let votedFor: ReplicaId | undefined;
    if (flags & F_VOTE) {
      votedFor = p.readDoubleLE(at);
      at += 8;
    }
    out.hardState = { term, votedFor };
  }
  if (flags & F_TRUNC) {
    out.truncateFrom = p.readDoubleLE(at);
    at += 8;
  }
  if (flags & F_ENTRIES) {
    const decoded = codec.decode(p.subarray(at));
    const entries = flags & columnsFlag ? fromColumns(decoded) : decoded;
    if (!Array.isArray(entries)) throw new Error('entries are not an array');
    for (const e of entries as Entry<T>[])
      if (typeof e?.index !== 'number') throw new Error('an entry has no numeric index');
    out.append = entries as Entry<T>[];
  }
  return out;
}

/** The entries of a record with F_COLUMNS: `[first index, ...columns]`. */
function fromColumns(decoded: unknown): unknown[] {
  const ok = Array.isArray(decoded) && decoded.length === 6 && typeof decoded[0] === 'number';
  const entries = ok
    ? fromEntryColumns(...(decoded as [number, unknown, unknown, unknown, unknown, unknown]))
    : undefined;
  if (entries === undefined) throw new Error('entries in columns of the wrong shape');
  return entries;
}

/** The snapshot file's payload (see the format above), also the snapshot part of a SharedLog record. */
export function snapshotPart<D>(
  snapshot: CoreSnapshot<D>,
  keepFrom: number,
  last: Position | undefined,
  codec: Codec,
): PayloadPart {
  // Codecs need not spell `undefined` (JSON cannot), so its absence is a flag instead.
  const hasData = snapshot.data !== undefined;
  const data = hasData ? codec.encode(snapshot.data) : new Uint8Array(0);
  const members = snapshot.members;
  const membersBytes = 8 * (members?.length ?? 0);
  const write = (buf: Buffer, at: number): void => {
    buf.writeDoubleLE(snapshot.lastIncludedIndex, at);
    buf.writeDoubleLE(snapshot.lastIncludedTerm, at + 8);
    buf.writeDoubleLE(keepFrom, at + 16);
    buf.writeDoubleLE(last?.seq ?? -1, at + 24);
    buf.writeDoubleLE(last?.offset ?? -1, at + 32);
    buf.writeDoubleLE(hasData ? 1 : 0, at + 40);
    buf.writeDoubleLE(members?.length ?? -1, at + 48);
    members?.forEach((id, i) => buf.writeDoubleLE(id, at + SNAPSHOT_FIXED + 8 * i));
    buf.set(data, at + SNAPSHOT_FIXED + membersBytes);
  };
  return { bytes: SNAPSHOT_FIXED + membersBytes + data.length, write };
}

/**
 * The snapshot file's one record. `keepFrom` is the first segment still needed, `last` the log's
 * last record when it is written (which the snapshot's batch wrote).
 */
export function encodeSnapshotRecord<D>(
  snapshot: CoreSnapshot<D>,
  keepFrom: number,
  last: Position | undefined,
  codec: Codec,
): Buffer {
  const part = snapshotPart(snapshot, keepFrom, last, codec);
  return frame(SNAPSHOT_KIND, part.bytes, part.write);
}

/**
 * Reads back what {@link snapshotPart} wrote: the whole of `p`. Throws an Error saying what is
 * wrong if it does not fit or its data does not decode.
 */
export function decodeSnapshotPart<D>(
  p: Buffer,
  codec: Codec,
): { snapshot: CoreSnapshot<D>; keepFrom: number; last: Position } {
  if (p.length < SNAPSHOT_FIXED) throw new Error('not a snapshot record');
  const count = p.readDoubleLE(48);
  const dataAt = SNAPSHOT_FIXED + 8 * Math.max(count, 0);
  if (!Number.isInteger(count) || count < -1 || dataAt > p.length) {
    throw new Error(`snapshot record has ${count} members, which do not fit`);
  }
  const members =
    count < 0 ? undefined : Array.from({ length: count }, (_, i) => p.readDoubleLE(SNAPSHOT_FIXED + 8 * i));
  let data: D;
  try {
    data = (p.readDoubleLE(40) === 0 ? undefined : codec.decode(p.subarray(dataAt))) as D;
  } catch (err) {
    throw new Error(`snapshot data cannot be decoded: ${(err as Error).message}`);
  }
  const base = { lastIncludedIndex: p.readDoubleLE(0), lastIncludedTerm: p.readDoubleLE(8), data };
  return {
    snapshot: members === undefined ? base : { ...base, members },
    keepFrom: p.readDoubleLE(16),
    last: { seq: p.readDoubleLE(24), offset: p.readDoubleLE(32) },
  };
}

/** Builds header + payload in one buffer, so that a record goes to disk in one write. */
export function frame(kind: number, payloadBytes: number, fill: (buf: Buffer, at: number) => void): Buffer {
  const buf = Buffer.allocUnsafe(HEADER_BYTES + payloadBytes);
  fill(buf, HEADER_BYTES);
  buf.writeUInt32LE(payloadBytes, 0);
  buf.writeUInt32LE(kind, 4); // kind in byte 4, zeros in 5..7
  buf.writeUInt32LE(crc32(buf.subarray(HEADER_BYTES)), 8);
  buf.writeUInt32LE(crc32(buf.subarray(0, 12)), 12);
  return buf;
}

/** Whether a header's kind byte is one FileStorage writes. */
export function knownKind(kind: number): boolean {
  if (kind === SNAPSHOT_KIND) return true;
  const flags = kind & LOG_FLAGS;
  return (
    (kind & ~LOG_FLAGS) === LOG_KIND &&
    flags !== 0 &&
    !(flags & F_VOTE && !(flags & F_HARD)) &&
    !(flags & F_COLUMNS && !(flags & F_ENTRIES))
  );
}

/** Reads the record at `off`, checking both checksums; `known` says which kind bytes are valid. */
export function parseRecord(buf: Buffer, off: number, known: (kind: number) => boolean = knownKind): ParsedRecord {
  if (buf.length - off < HEADER_BYTES)
    return { ok: false, reason: 'incomplete record header', fatal: false, resumeAt: undefined };
  if (crc32(buf.subarray(off, off + 12)) !== buf.readUInt32LE(off + 12))
    return { ok: false, reason: 'bad header checksum', fatal: false, resumeAt: off + 1 };
  const kind = buf[off + 4]!;
  if (!known(kind) || buf[off + 5] !== 0 || buf[off + 6] !== 0 || buf[off + 7] !== 0)
    return { ok: false, reason: `unknown record kind 0x${kind.toString(16)}`, fatal: true, resumeAt: undefined };
  const end = off + HEADER_BYTES + buf.readUInt32LE(off);
  if (end > buf.length)
    return { ok: false, reason: 'record runs past the end of the file', fatal: false, resumeAt: undefined };
  if (crc32(buf.subarray(off + HEADER_BYTES, end)) !== buf.readUInt32LE(off + 8))
    return { ok: false, reason: 'bad payload checksum', fatal: false, resumeAt: end };
  return { ok: true, kind, payload: buf.subarray(off + HEADER_BYTES, end), end };
}

/** The offset of the first valid record at or after `from`, or -1. */
export function findRecord(buf: Buffer, from: number, known: (kind: number) => boolean = knownKind): number {
  for (let o = from; o + HEADER_BYTES <= buf.length; o++) {
    // Cheap byte tests first: most offsets fail them without computing a checksum.
    if (buf[o + 5] !== 0 || buf[o + 6] !== 0 || buf[o + 7] !== 0 || !known(buf[o + 4]!)) continue;
    if (o + HEADER_BYTES + buf.readUInt32LE(o) > buf.length) continue;
    if (parseRecord(buf, o, known).ok) return o;
  }
  return -1;
}

/** Whether position `a` exists and is at or after `b` in the log. */
export function atOrAfter(a: Position | undefined, b: Position): boolean {
  return a !== undefined && (a.seq > b.seq || (a.seq === b.seq && a.offset >= b.offset));
}
