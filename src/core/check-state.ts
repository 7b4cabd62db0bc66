import { CorruptStateError } from './errors.js';
import type { PersistentState } from './storage.js';

// What a Storage returns is input like any other: the replica checks it before trusting it.

/** Refuses state that no correct storage could hold: it would break the log's invariants silently. */
export function checkPersistentState<T, D>(s: PersistentState<T, D>): void {
  const fail = (what: string): never => { throw new CorruptStateError(`storage returned an impossible state: ${what}`); };
  // A configuration is a non-empty list of ids: anything else would silently change who votes.
  const ids = (v: unknown): boolean =>
    v === undefined || (Array.isArray(v) && v.length > 0 && v.every((id) => Number.isSafeInteger(id)));
  if (!Number.isSafeInteger(s.term) || s.term < 0) fail(`term ${String(s.term)}`);
  let index = s.snapshot?.lastIncludedIndex ?? 0;
  let term = s.snapshot?.lastIncludedTerm ?? 0;
  if (!Number.isSafeInteger(index) || index < 0 || term > s.term) fail('snapshot index or term');
  if (!ids(s.snapshot?.members)) fail('snapshot members are not a list of ids');
  for (const e of s.entries) {
    if (e.index !== ++index) fail(`entry ${String(e.index)} where ${index} was expected`);
    if (!(e.term >= term && e.term <= s.term)) fail(`entry ${index} has term ${String(e.term)}`);
    if (!ids(e.config) || (e.noop !== undefined && e.noop !== true)) fail(`entry ${index}: malformed config or noop`);
    term = e.term;
  }
}
