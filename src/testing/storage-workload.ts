import type { CoreSnapshot, Entry } from '../core/message.js';
import type { PersistentState, StorageBatch } from '../core/storage.js';

// The data the Storage conformance suite writes, and the reference model it checks loads
// against. Shared with our crash test (tests/storage/crash.test.ts), which replays the same
// random batches in a child process it kills.

/** The transition type the suite stores: arbitrary plain data with an id. */
export interface SuiteTransition {
  /** Every transition has an id, as the replica requires. */
  id: string | number;
  /** Anything else: the storage must keep it as given. */
  [key: string]: unknown;
}

/** An ordinary entry at `index` in `term`, with `extra` fields merged in. */
export function entry(index: number, term: number, extra: Record<string, unknown> = {}): Entry<SuiteTransition> {
  const transition = { id: `t${index}.${term}` };
  return { index, term, kind: 'transition', transition, ...extra } as Entry<SuiteTransition>;
}

/** Ordinary entries `from`..`to` (inclusive), all in `term`. */
export function entries(from: number, to: number, term: number): Entry<SuiteTransition>[] {
  const out: Entry<SuiteTransition>[] = [];
  for (let i = from; i <= to; i++) out.push(entry(i, term));
  return out;
}

/**
 * The reference semantics of the Storage contract, written independently of any storage: the
 * batch's fields apply in order; a snapshot drops the entries it covers.
 */
export class ModelStorage {
  /** The saved term. */
  term = 0;
  /** The saved vote. */
  votedFor: number | undefined = undefined;
  /** The saved snapshot. */
  snapshot: CoreSnapshot<unknown> | undefined = undefined;
  /** The entries after the snapshot. */
  log: Entry<SuiteTransition>[] = [];

  /** Applies one batch as the contract says a storage must. */
  apply(batch: StorageBatch<SuiteTransition, unknown>): void {
    if (batch.hardState) ({ term: this.term, votedFor: this.votedFor } = batch.hardState);
    if (batch.truncateFrom !== undefined) {
      const from = batch.truncateFrom;
      this.log = this.log.filter((e) => e.index < from);
    }
    for (const e of batch.append ?? []) this.log.push(e);
    if (batch.snapshot) {
      const s = batch.snapshot;
      this.snapshot = s;
      this.log = this.log.filter((e) => e.index > s.lastIncludedIndex);
    }
  }

  /** What `load()` must return now. */
  state(): PersistentState<SuiteTransition, unknown> {
    return { term: this.term, votedFor: this.votedFor, snapshot: this.snapshot, entries: this.log.slice() };
  }

  /** Index of the last entry, counting the snapshot. */
  lastIndex(): number {
    return this.log.at(-1)?.index ?? this.snapshot?.lastIncludedIndex ?? 0;
  }
}

/**
 * A random but Raft-shaped batch: truncations stay above the snapshot, appends are contiguous.
 * Now and then it carries a configuration entry or a snapshot with `members`.
 */
export function randomBatch(
  model: ModelStorage,
  rand: () => number,
  seq: number,
): StorageBatch<SuiteTransition, unknown> {
  const batch: StorageBatch<SuiteTransition, unknown> = {};
  if (rand() < 0.3) batch.hardState = { term: seq, votedFor: rand() < 0.5 ? undefined : Math.floor(rand() * 5) };
  const snapIndex = model.snapshot?.lastIncludedIndex ?? 0;
  let last = model.lastIndex();
  if (rand() < 0.15 && last > snapIndex) {
    batch.truncateFrom = snapIndex + 1 + Math.floor(rand() * (last - snapIndex));
    last = batch.truncateFrom - 1;
  }
  const n = rand() < 0.1 ? Math.floor(rand() * 200) : Math.floor(rand() * 4);
  if (n > 0) {
    batch.append = [];
    for (let i = 1; i <= n; i++)
      batch.append.push({
        index: last + i,
        term: seq,
        kind: 'transition',
        transition: { id: `${seq}:${i}`, pad: 'x'.repeat(Math.floor(rand() * 40)) },
        // Now and then a configuration entry, whose fields a storage must keep as well.
        ...(rand() < 0.05 ? { kind: 'config', config: [1, 2, 3 + (seq % 5)] } : {}),
      } as Entry<SuiteTransition>);
    last += n;
  }
  if (rand() < 0.08 && last > snapIndex) {
    const at = snapIndex + 1 + Math.floor(rand() * (last - snapIndex));
    const kept = model.log.filter((e) => batch.truncateFrom === undefined || e.index < batch.truncateFrom);
    const after = [...kept, ...(batch.append ?? [])];
    const term = after.find((e) => e.index === at)?.term ?? 0;
    const members = rand() < 0.8 ? { members: [1, 2, seq] } : {};
    batch.snapshot = { lastIncludedIndex: at, lastIncludedTerm: term, data: { seq, at }, ...members };
  }
  return batch;
}
