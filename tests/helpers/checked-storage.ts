import { MemoryStorage, type StorageBatch } from '../../src/index.js';

/**
 * A MemoryStorage that checks every batch against the Storage contract as the core must
 * produce it: appends follow the last saved entry (after the batch's truncation), or start
 * right after the batch's own snapshot; terms never go back; a vote never changes within a term.
 */
export class CheckedStorage<T, D> extends MemoryStorage<T, D> {
  private last = 0;
  private snapshotIndex = 0;
  private term = 0;
  private vote: number | undefined;
  readonly violations: string[] = [];

  override async save(batch: StorageBatch<T, D>): Promise<void> {
    const fail = (what: string): void => { this.violations.push(`${what} in ${JSON.stringify(batch).slice(0, 300)}`); };
    if (batch.hardState) {
      const { term, votedFor } = batch.hardState;
      if (term < this.term) fail(`term went back from ${this.term} to ${term}`);
      if (term === this.term && this.vote !== undefined && votedFor !== this.vote) fail(`vote changed within term ${term}`);
      this.term = term;
      this.vote = votedFor;
    }
    if (batch.truncateFrom !== undefined) this.last = Math.min(this.last, batch.truncateFrom - 1);
    if (batch.append?.length) {
      const first = batch.append[0]!.index;
      const afterSnapshot = batch.snapshot !== undefined && first === batch.snapshot.lastIncludedIndex + 1;
      if (first !== this.last + 1 && !afterSnapshot) fail(`append starts at ${first} after saved entry ${this.last}`);
      this.last = batch.append[batch.append.length - 1]!.index;
    }
    if (batch.snapshot) {
      if (batch.snapshot.lastIncludedIndex < this.snapshotIndex) fail('snapshot went back');
      this.snapshotIndex = batch.snapshot.lastIncludedIndex;
      this.last = Math.max(this.last, this.snapshotIndex);
    }
    return super.save(batch);
  }
}
