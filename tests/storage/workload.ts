import type { Snapshot } from '../../src/core/types.js';
import type { Entry } from '../../src/core/message.js';
import type { PersistentState, StorageBatch } from '../../src/core/storage.js';
import { seededRandom } from '../../src/sim/random.js';

// Shared by the contract suite and the crash-test child, so it must not import vitest.

/** The transition type the suite stores: arbitrary plain data. */
export interface Tr {
  id: string | number;
  [key: string]: unknown;
}

export function entry(index: number, term: number, extra: Record<string, unknown> = {}): Entry<Tr> {
  return { index, term, kind: 'transition', transition: { id: `t${index}.${term}` }, ...extra } as Entry<Tr>;
}

export function entries(from: number, to: number, term: number): Entry<Tr>[] {
  const out: Entry<Tr>[] = [];
  for (let i = from; i <= to; i++) out.push(entry(i, term));
  return out;
}

/** The project's seeded PRNG, so a failure replays. */
export const prng = seededRandom;

/**
 * The reference semantics of the Storage contract, written independently of any storage: the
 * batch's fields apply in order; a snapshot drops the entries it covers.
 */
export class ModelStorage {
  term = 0;
  votedFor: number | undefined = undefined;
  snapshot: Snapshot<unknown> | undefined = undefined;
  log: Entry<Tr>[] = [];

  apply(batch: StorageBatch<Tr, unknown>): void {
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

  state(): PersistentState<Tr, unknown> {
    return { term: this.term, votedFor: this.votedFor, snapshot: this.snapshot, entries: this.log.slice() };
  }

  /** Index of the last entry, counting the snapshot. */
  lastIndex(): number {
    return this.log.at(-1)?.index ?? this.snapshot?.lastIncludedIndex ?? 0;
  }
}

/** A random but Raft-shaped batch: truncations stay above the snapshot, appends are contiguous. */
export function randomBatch(model: ModelStorage, rand: () => number, seq: number): StorageBatch<Tr, unknown> {
  const batch: StorageBatch<Tr, unknown> = {};
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
        index: last + i, term: seq, kind: 'transition', transition: { id: `${seq}:${i}`, pad: 'x'.repeat(Math.floor(rand() * 40)) },
        // Now and then a configuration entry, whose fields a storage must keep as well.
        ...(rand() < 0.05 ? { kind: 'config', config: [1, 2, 3 + (seq % 5)] } : {}),
      } as Entry<Tr>);
    last += n;
  }
  if (rand() < 0.08 && last > snapIndex) {
    const at = snapIndex + 1 + Math.floor(rand() * (last - snapIndex));
    const after = [...model.log.filter((e) => batch.truncateFrom === undefined || e.index < batch.truncateFrom), ...(batch.append ?? [])];
    const term = after.find((e) => e.index === at)?.term ?? 0;
    const members = rand() < 0.8 ? { members: [1, 2, seq] } : {};
    batch.snapshot = { lastIncludedIndex: at, lastIncludedTerm: term, data: { seq, at }, ...members };
  }
  return batch;
}

/**
 * Batch `seq` of the crash test: a pure function of (seed, seq, state before it), so the parent
 * can recompute what the child wrote. hardState.term = seq marks, on disk, the last batch applied.
 */
export function crashBatch(model: ModelStorage, seed: number, seq: number): StorageBatch<Tr, unknown> {
  const rand = prng((seed * 1000003 + seq) >>> 0);
  const batch = randomBatch(model, rand, seq);
  // Keep the log short enough that reloading it after every kill stays cheap.
  if (!batch.snapshot && model.log.length > 400) {
    const at = model.log[350]!;
    batch.snapshot = { lastIncludedIndex: at.index, lastIncludedTerm: at.term, data: { seq } };
    if (batch.truncateFrom !== undefined && batch.truncateFrom <= at.index) delete batch.snapshot;
  }
  return { ...batch, hardState: { term: seq, votedFor: rand() < 0.5 ? undefined : seq % 3 } };
}

/** A model holding a loaded state. */
export function modelOf(state: PersistentState<Tr, unknown>): ModelStorage {
  const m = new ModelStorage();
  m.term = state.term;
  m.votedFor = state.votedFor;
  m.snapshot = state.snapshot;
  m.log = state.entries.slice();
  return m;
}
