import type { CoreSnapshot, Entry } from '../core/message.js';
import type { PersistentState, Storage, StorageBatch } from '../core/storage.js';

/** Batches of at most this many entries are appended to the flat list at once (see `save`). */
const SMALL_BATCH = 16;

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
  /** entries[i] has index `first + i`; the batches of `tail` follow them. */
  private entries: Entry<T>[] = [];
  private first = 1;
  /**
   * Appended batches, each kept as the array it came in and joined to `entries` only when a
   * save must cut into the log or a load reads it: a plain append costs one push, not one per
   * entry into an ever longer array. The replica never changes a batch once it has saved it.
   */
  private tail: Entry<T>[][] = [];
  /** The index the next appended entry must have to extend the log in place. */
  private next = 1;

  /** Creates an empty storage: term 0, no vote, no entries, no snapshot. */
  constructor() {}

  /** Everything saved so far, copied so that later saves do not change what was returned. */
  async load(): Promise<PersistentState<T, D>> {
    return { term: this.term, votedFor: this.votedFor, snapshot: this.snapshot, entries: this.flat().slice() };
  }

  /** Applies the batch; in memory it is "durable" at once. */
  async save(batch: StorageBatch<T, D>): Promise<void> {
    if (batch.hardState) ({ term: this.term, votedFor: this.votedFor } = batch.hardState);
    const append = batch.append;
    const plain = batch.truncateFrom === undefined && batch.snapshot === undefined;
    if (plain && (append === undefined || append.length === 0)) return;
    if (plain && append![0]!.index === this.next) {
      // A big batch is kept as given (one push, not one per entry); a small one joins the flat list
      // at once, since an array per save of a single entry is what the GC then has to walk.
      if (this.tail.length === 0 && append!.length <= SMALL_BATCH) for (const e of append!) this.entries.push(e);
      else this.tail.push(append!);
      this.next += append!.length;
      return;
    }
    const entries = this.flat();
    if (batch.truncateFrom !== undefined)
      entries.length = Math.max(0, Math.min(entries.length, batch.truncateFrom - this.first));
    if (append && append.length > 0) {
      const offset = append[0]!.index - this.first;
      // A gap is allowed only when this batch's snapshot covers it: start the list afresh there.
      if (offset < 0 || offset > entries.length) {
        entries.length = 0;
        this.first = append[0]!.index;
      } else {
        entries.length = offset;
      }
      for (const e of append) entries.push(e);
    }
    if (batch.snapshot) {
      const s = batch.snapshot;
      this.snapshot = s;
      const covered = s.lastIncludedIndex - this.first + 1;
      if (covered >= entries.length) {
        entries.length = 0;
        this.first = s.lastIncludedIndex + 1;
      } else if (covered > 0) {
        entries.splice(0, covered);
        this.first = s.lastIncludedIndex + 1;
      }
    }
    this.next = this.first + entries.length;
  }

  /** The entries as one array, `tail` joined in. */
  private flat(): Entry<T>[] {
    for (const batch of this.tail) for (const e of batch) this.entries.push(e);
    this.tail = [];
    return this.entries;
  }
}
