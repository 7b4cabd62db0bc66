// The on-disk format of SharedLog: FileStorage's framing and payload parts, tagged with a group.
// Pure encoding and parsing, no I/O: shared-log-recovery.ts reads a directory back with it.
import type { Codec } from '../core/codec.js';
import type { CoreSnapshot } from '../core/message.js';
import type { StorageBatch } from '../core/storage.js';
import {
  batchPart,
  decodeBatchPart,
  decodeSnapshotPart,
  F_ENTRIES,
  F_HARD,
  F_SNAP,
  F_VOTE,
  frame,
  parseRecord,
  snapshotPart,
} from './file-format.js';

/*
 * On-disk format (all integers little-endian; framing, batch and snapshot parts as in
 * file-format.ts).
 *
 * Directory: `FORMAT` (written first), `LOCK`, `log-<seq, 16 digits>.seg` (seq counts up from 1).
 *
 * A segment is a sequence of framed records, one per write, so that a crash tears at most the
 * last one and that one (with every save in it) is all or nothing:
 *   WRITE (0x70): the records of one group commit, each framed again (its own CRC), in the order
 *     the saves arrived;
 *   CHECKPOINT (0x71): the whole state of every live group (one RESET group record each); it
 *     makes every earlier segment obsolete.
 * Inside them:
 *   GROUP (0x80 | flags): one group's batch. Payload: f64 group id, then if SNAP the f64 length
 *     of a snapshot part and that part (FileStorage's snapshot file payload, its keepFrom and log
 *     position -1), then FileStorage's batch part (HARD: term, VOTE: votedFor, TRUNC:
 *     truncateFrom, ENTRIES: codec(entries), or with flag COLUMNS (format 2) the entries in
 *     columns, as FileStorage format 3 has them). Flag RESET: the group starts from empty first.
 *     Applied in the order of a StorageBatch: hard state, truncation, append, snapshot.
 *   REMOVE (0x60): f64 group id; the group and all its data are gone.
 */

/** Kind of the record of one write: group records follow. */
export const WRITE_KIND = 0x70;
/** Kind of the record of a checkpoint: one RESET group record per live group. */
export const CHECKPOINT_KIND = 0x71;
/**
 * Kind of a group's batch, or-ed with its flags (F_HARD, F_VOTE, F_TRUNC, F_ENTRIES, F_SNAP,
 * F_RESET, F_GROUP_COLUMNS).
 */
export const GROUP_KIND = 0x80;
/** The flag bits of a group record's kind. */
export const GROUP_FLAGS = 0x7f;
/** Group record flag: the group starts from an empty state before the batch is applied. */
export const F_RESET = 32;
/** Group record flag: the entries are in columns (format 2). */
export const F_GROUP_COLUMNS = 64;
/** Kind of a group's removal. */
export const REMOVE_KIND = 0x60;
/** The content of the format file; the group is the version. */
export const SHARED_FORMAT_TEXT = /^tickraft SharedLog format (\d+)\n$/;
/** The format this version writes: 2 added entries in columns (F_GROUP_COLUMNS). */
export const SHARED_FORMAT_VERSION = 2;
/** The oldest format this version reads: format 1 is format 2 without F_GROUP_COLUMNS. */
export const SHARED_OLDEST_FORMAT = 1;

/** Whether a kind byte is one of a segment's top-level records. */
export const knownOuterKind = (kind: number): boolean => kind === WRITE_KIND || kind === CHECKPOINT_KIND;

/** Whether a kind byte is one of the records inside a write or a checkpoint. */
export function knownInnerKind(kind: number): boolean {
  if (kind === REMOVE_KIND) return true;
  const flags = kind & GROUP_FLAGS;
  return (
    (kind & ~GROUP_FLAGS) === GROUP_KIND &&
    !(flags & F_VOTE && !(flags & F_HARD)) &&
    !(flags & F_GROUP_COLUMNS && !(flags & F_ENTRIES))
  );
}

/** One group's batch as a framed inner record; `reset` makes it the group's whole state. */
export function encodeGroupRecord<T, D>(
  group: number,
  batch: StorageBatch<T, D>,
  reset: boolean,
  codec: Codec,
): Buffer {
  const append = batch.append !== undefined && batch.append.length > 0 ? batch.append : undefined;
  const part = batchPart(batch.hardState, batch.truncateFrom, append, codec, F_GROUP_COLUMNS);
  const snap = batch.snapshot !== undefined ? snapshotPart(batch.snapshot, -1, undefined, codec) : undefined;
  const flags = part.flags | (snap !== undefined ? F_SNAP : 0) | (reset ? F_RESET : 0);
  const snapBytes = snap !== undefined ? 8 + snap.bytes : 0;
  return frame(GROUP_KIND | flags, 8 + snapBytes + part.bytes, (buf, at) => {
    buf.writeDoubleLE(group, at);
    if (snap !== undefined) {
      buf.writeDoubleLE(snap.bytes, at + 8);
      snap.write(buf, at + 16);
    }
    part.write(buf, at + 8 + snapBytes);
  });
}

/** A group's removal as a framed inner record. */
export function encodeRemoveRecord(group: number): Buffer {
  return frame(REMOVE_KIND, 8, (buf, at) => buf.writeDoubleLE(group, at));
}

/** Frames already framed inner records as one write (or checkpoint) record. */
export function encodeOuterRecord(kind: typeof WRITE_KIND | typeof CHECKPOINT_KIND, inner: readonly Buffer[]): Buffer {
  let bytes = 0;
  for (const r of inner) bytes += r.length;
  return frame(kind, bytes, (buf, at) => {
    for (const r of inner) {
      buf.set(r, at);
      at += r.length;
    }
  });
}

/** An inner record read back. */
export type InnerRecord<T, D> =
  { kind: 'group'; group: number; reset: boolean; batch: StorageBatch<T, D> } | { kind: 'remove'; group: number };

/**
 * The inner records of a write or checkpoint payload (whose CRC has passed). Throws an Error
 * saying what is wrong if one is damaged or does not decode: past the outer CRC, that is corruption.
 */
export function decodeInnerRecords<T, D>(payload: Buffer, codec: Codec): InnerRecord<T, D>[] {
  const out: InnerRecord<T, D>[] = [];
  let off = 0;
  while (off < payload.length) {
    const rec = parseRecord(payload, off, knownInnerKind);
    if (!rec.ok) throw new Error(`inner record at ${off}: ${rec.reason}`);
    const p = rec.payload;
    if (p.length < 8) throw new Error(`inner record at ${off} has no group id`);
    const group = p.readDoubleLE(0);
    if (rec.kind === REMOVE_KIND) out.push({ kind: 'remove', group });
    else {
      const flags = rec.kind & GROUP_FLAGS;
      let at = 8;
      let snapshot: CoreSnapshot<D> | undefined;
      if (flags & F_SNAP) {
        const bytes = p.readDoubleLE(at);
        if (!Number.isInteger(bytes) || bytes < 0 || at + 8 + bytes > p.length)
          throw new Error(`inner record at ${off}: a snapshot of ${bytes} bytes does not fit`);
        snapshot = decodeSnapshotPart<D>(p.subarray(at + 8, at + 8 + bytes), codec).snapshot;
        at += 8 + bytes;
      }
      const batch: StorageBatch<T, D> = decodeBatchPart<T>(flags, p, at, codec, F_GROUP_COLUMNS);
      if (snapshot !== undefined) batch.snapshot = snapshot;
      out.push({ kind: 'group', group, reset: (flags & F_RESET) !== 0, batch });
    }
    off = rec.end;
  }
  return out;
}
