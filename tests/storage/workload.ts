import type { PersistentState, StorageBatch } from '../../src/core/storage.js';
import { seededRandom } from '../../src/sim/random.js';
import { ModelStorage, randomBatch, type SuiteTransition as Tr } from '../../src/testing/storage-workload.js';

// The crash test's workload: the random batches of the Storage conformance suite
// (src/testing/storage-workload.ts), replayable from (seed, seq). Must not import vitest: the
// crash-test child runs it.
export {
  entries,
  entry,
  ModelStorage,
  randomBatch,
  type SuiteTransition as Tr,
} from '../../src/testing/storage-workload.js';

/** The project's seeded PRNG, so a failure replays. */
export const prng = seededRandom;

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
