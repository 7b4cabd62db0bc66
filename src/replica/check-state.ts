import { CorruptStateError } from '../core/errors.js';
import type { PersistentState } from '../core/storage.js';
import { count, validEntries, validSnapshot } from '../core/validate.js';

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
