import type { CoreSnapshot, Entry } from '../core/message.js';
import type { PersistentState, Storage, StorageBatch } from '../core/storage.js';

/**
 * A {@link Storage} in memory: durable only as long as the process lives. An instance outlives
 * the replica that used it: a new replica built with the same instance is that replica
 * restarted after a crash, and finds everything that was saved. Use it for tests, simulations
 * and replicas whose durability comes from the rest of the cluster.
 */
export class MemoryStorage<T, D> implements Storage<T, D> {
  private term = 0;
  private votedFor: number | undefined = undefined;
  private snapshot: CoreSnapshot<D> | undefined = undefined;
  /** entries[i] has index `first + i`. */
  private entries: Entry<T>[] = [];
  private first = 1;

  /** Creates an empty storage: term 0, no vote, no entries, no snapshot. */
  constructor() {}

  /** Everything saved so far, copied so that later saves do not change what was returned. */
  async load(): Promise<PersistentState<T, D>> {
    return { term: this.term, votedFor: this.votedFor, snapshot: this.snapshot, entries: this.entries.slice() };
  }

  /** Applies the batch; in memory it is "durable" at once. */
  async save(batch: StorageBatch<T, D>): Promise<void> {
    if (batch.hardState) ({ term: this.term, votedFor: this.votedFor } = batch.hardState);
    if (batch.truncateFrom !== undefined)
      this.entries.length = Math.max(0, Math.min(this.entries.length, batch.truncateFrom - this.first));
    if (batch.append && batch.append.length > 0) {
      const offset = batch.append[0]!.index - this.first;
      // A gap is allowed only when this batch's snapshot covers it: start the list afresh there.
      if (offset < 0 || offset > this.entries.length) {
        this.entries = [];
        this.first = batch.append[0]!.index;
      } else {
        this.entries.length = offset;
      }
      for (const e of batch.append) this.entries.push(e);
    }
    if (batch.snapshot) {
      const s = batch.snapshot;
      this.snapshot = s;
      const covered = s.lastIncludedIndex - this.first + 1;
      if (covered >= this.entries.length) {
        this.entries = [];
        this.first = s.lastIncludedIndex + 1;
      } else if (covered > 0) {
        this.entries.splice(0, covered);
        this.first = s.lastIncludedIndex + 1;
      }
    }
  }
}
