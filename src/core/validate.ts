import { CorruptStateError } from './errors.js';
import type { PersistentState } from './storage.js';
import type { Message } from './message.js';
import { MAX_TERM_OR_INDEX, type ReplicaId } from './types.js';

// Validation of what arrives from the network, before it reaches the algorithm: the replica
// runs it on every message it receives, and TcpCluster on every frame it decodes.

type FieldKind = 'count' | 'bool' | 'entries' | 'snapshot' | 'chunk';
// Terms, indexes and rounds: a replica must be able to add one to any it adopts.
export const count = (v: unknown): boolean =>
  Number.isSafeInteger(v) && (v as number) >= 0 && (v as number) <= MAX_TERM_OR_INDEX;
const SHAPES: Record<string, Record<string, FieldKind>> = {
  vote: { lastLogIndex: 'count', lastLogTerm: 'count', pre: 'bool', force: 'bool' },
  voteResponse: { granted: 'bool', pre: 'bool' },
  append: { prevLogIndex: 'count', prevLogTerm: 'count', entries: 'entries', leaderCommit: 'count', round: 'count' },
  appendResponse: { success: 'bool', index: 'count', hintIndex: 'count', hintTerm: 'count', round: 'count' },
  snapshot: { snapshot: 'snapshot', offset: 'count', size: 'count', chunk: 'chunk' },
  snapshotResponse: { index: 'count', offset: 'count' },
  timeoutNow: {},
};

/** An object whose `id` is a string or a finite number: what the log may hold. */
export function isTransition(t: unknown): boolean {
  if (typeof t !== 'object' || t === null) return false;
  const id = (t as { id?: unknown }).id;
  return typeof id === 'string' || (typeof id === 'number' && Number.isFinite(id));
}

const isIdList = (v: unknown): boolean => Array.isArray(v) && v.length > 0 && v.every((id) => Number.isSafeInteger(id));

const ENTRY_KINDS = new Set<unknown>(['transition', 'noop', 'config']);

/** Entries that follow `prevLogIndex` without gaps, with terms between `prevLogTerm` and `term`, each well formed. */
export function validEntries(m: Record<string, unknown>): boolean {
  const entries = m.entries;
  if (!Array.isArray(entries)) return false;
  let index = m.prevLogIndex as number;
  let term = m.prevLogTerm as number;
  for (const e of entries as unknown[]) {
    if (typeof e !== 'object' || e === null) return false;
    const entry = e as Record<string, unknown>;
    // Indexes must follow prevLogIndex without gaps and terms never decrease nor pass the sender's term.
    if (entry.index !== ++index || !count(entry.index) || !count(entry.term)) return false;
    if ((entry.term as number) < term || (entry.term as number) > (m.term as number)) return false;
    if (!isTransition(entry.transition) || !ENTRY_KINDS.has(entry.kind)) return false;
    // A configuration entry, and only one, names the members.
    if (entry.kind === 'config' ? !isIdList(entry.config) : entry.config !== undefined) return false;
    term = entry.term as number;
  }
  return true;
}

export function validSnapshot(s: unknown, term: number): boolean {
  if (typeof s !== 'object' || s === null) return false;
  const snap = s as Record<string, unknown>;
  const { lastIncludedIndex: index, lastIncludedTerm: last, members } = snap;
  return count(index) && count(last) && (last as number) <= term && (members === undefined || isIdList(members));
}

/** A snapshot's text must fit in one string (0x1fffffe8 characters in V8), and a chunk within it. */
const validChunk = ({ chunk, offset, size }: Record<string, unknown>): boolean =>
  typeof chunk === 'string' && (size as number) <= 0x1fffffe8 && (offset as number) + chunk.length <= (size as number);

/**
 * Whether `m` is a well-formed message from one of `senders`. Anything else (a wrong type, a
 * missing or mistyped field, an entry list with gaps) is dropped before it reaches the algorithm.
 */
export function isValidMessage<T, D>(m: unknown, senders: ReadonlySet<ReplicaId>): m is Message<T, D> {
  if (typeof m !== 'object' || m === null) return false;
  const msg = m as Record<string, unknown>;
  const shape = typeof msg.type === 'string' && Object.hasOwn(SHAPES, msg.type) ? SHAPES[msg.type] : undefined;
  if (!shape || !senders.has(msg.from as ReplicaId) || !count(msg.term)) return false;
  for (const field in shape) {
    const v = msg[field];
    const kind = shape[field];
    const ok = kind === 'count' ? count(v) : kind === 'bool' ? typeof v === 'boolean' : kind === 'chunk'
      ? validChunk(msg) : kind === 'entries' ? validEntries(msg) : validSnapshot(v, msg.term as number);
    if (!ok) return false;
  }
  return true;
}

// What a Storage returns is input like any other: the replica checks it before trusting it.

/**
 * Refuses state that no correct storage could hold: it would break the log's invariants
 * silently. Entries and the snapshot pass the same checks as those arriving from the network.
 */
export function checkPersistentState<T, D>(s: PersistentState<T, D>): void {
  const fail = (what: string): never => {
    throw new CorruptStateError(`storage returned an impossible state: ${what}`);
  };
  if (typeof s !== 'object' || s === null) fail(`${String(s)} instead of an object`);
  if (!count(s.term)) fail(`term ${String(s.term)}`);
  if (s.votedFor !== undefined && !Number.isSafeInteger(s.votedFor)) fail(`votedFor ${String(s.votedFor)}`);
  const snap = s.snapshot;
  const validSnap = snap === undefined || (validSnapshot(snap, s.term) && 'data' in snap);
  if (!validSnap) fail('a snapshot with a bad index, term or data');
  const snapshot = { prevLogIndex: s.snapshot?.lastIncludedIndex ?? 0, prevLogTerm: s.snapshot?.lastIncludedTerm ?? 0 };
  if (!validEntries({ ...snapshot, entries: s.entries, term: s.term })) {
    fail('entries are not transitions following the snapshot without gaps, terms never going back nor past the term');
  }
}
