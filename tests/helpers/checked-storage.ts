import { MemoryStorage, type PersistentState, type Storage, type StorageBatch } from '../../src/index.js';

/**
 * A MemoryStorage that checks every batch against the Storage contract as the core must
 * produce it: appends follow the last saved entry (after the batch's truncation), or start
 * right after the batch's own snapshot; terms never go back; a vote never changes within a term.
 * With `inner`, the checked batches go there instead (a user-written storage under test).
 */
export class CheckedStorage<T, D> extends MemoryStorage<T, D> {
  constructor(private readonly inner?: Storage<T, D>) {
    super();
  }

  override load(): Promise<PersistentState<T, D>> {
    return this.inner ? this.inner.load() : super.load();
  }

  private savedLast = 0;
  private savedSnapshotIndex = 0;
  private savedTerm = 0;
  private savedVote: number | undefined;
  readonly violations: string[] = [];

  /**
   * While set, a save never settles and keeps nothing: the process died during it (see
   * `Simulation.crashWhileSaving`). Saves that already resolved are kept, as on a disk.
   */
  hangSaves = false;
  /** Saves left hanging by {@link CheckedStorage.hangSaves}. */
  hung = 0;

  override save(batch: StorageBatch<T, D>): Promise<void> {
    if (!this.hangSaves) return this.check(batch);
    this.hung++;
    return new Promise<void>(() => undefined);
  }

  private async check(batch: StorageBatch<T, D>): Promise<void> {
    const fail = (what: string): void => {
      this.violations.push(`${what} in ${JSON.stringify(batch).slice(0, 300)}`);
    };
    if (batch.hardState) {
      const { term, votedFor } = batch.hardState;
      if (term < this.savedTerm) fail(`term went back from ${this.savedTerm} to ${term}`);
      if (term === this.savedTerm && this.savedVote !== undefined && votedFor !== this.savedVote)
        fail(`vote changed within term ${term}`);
      this.savedTerm = term;
      this.savedVote = votedFor;
    }
    if (batch.truncateFrom !== undefined) this.savedLast = Math.min(this.savedLast, batch.truncateFrom - 1);
    if (batch.append?.length) {
      const first = batch.append[0]!.index;
      const afterSnapshot = batch.snapshot !== undefined && first === batch.snapshot.lastIncludedIndex + 1;
      if (first !== this.savedLast + 1 && !afterSnapshot)
        fail(`append starts at ${first} after saved entry ${this.savedLast}`);
      this.savedLast = batch.append[batch.append.length - 1]!.index;
    }
    if (batch.snapshot) {
      if (batch.snapshot.lastIncludedIndex < this.savedSnapshotIndex) fail('snapshot went back');
      this.savedSnapshotIndex = batch.snapshot.lastIncludedIndex;
      this.savedLast = Math.max(this.savedLast, this.savedSnapshotIndex);
    }
    return this.inner ? this.inner.save(batch) : super.save(batch);
  }
}
