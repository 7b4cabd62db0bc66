import type { Entry } from './message.js';

/**
 * The entries after the latest snapshot, addressed by index in O(1). Terms never decrease
 * along a Raft log, which lets {@link RaftLog.lastIndexWithTermAtMost} binary-search.
 */
export class RaftLog<T> {
  private entries: Entry<T>[];

  constructor(public snapshotIndex: number, public snapshotTerm: number, entries: Entry<T>[]) {
    this.entries = entries;
  }

  get lastIndex(): number { return this.snapshotIndex + this.entries.length; }
  get lastTerm(): number { return this.entries.length > 0 ? this.entries[this.entries.length - 1]!.term : this.snapshotTerm; }

  /** The term of the entry at `index`, or undefined when compacted away or beyond the end. */
  term(index: number): number | undefined {
    return index === this.snapshotIndex ? this.snapshotTerm : this.entries[index - this.snapshotIndex - 1]?.term;
  }

  entry(index: number): Entry<T> | undefined {
    return index > this.snapshotIndex ? this.entries[index - this.snapshotIndex - 1] : undefined;
  }

  /** Entries `from`..`to` inclusive; `from` must be above the snapshot. */
  slice(from: number, to: number): Entry<T>[] {
    return this.entries.slice(from - this.snapshotIndex - 1, to - this.snapshotIndex);
  }

  append(entry: Entry<T>): void { this.entries.push(entry); }

  /** Removes every entry at `index` or above and returns them. */
  truncateFrom(index: number): Entry<T>[] {
    return this.entries.splice(index - this.snapshotIndex - 1);
  }

  /** Drops every entry up to `index`, which a snapshot with that index and term now covers. */
  compact(index: number, term: number): void {
    this.entries = index >= this.lastIndex ? [] : this.entries.slice(index - this.snapshotIndex);
    this.snapshotIndex = index;
    this.snapshotTerm = term;
  }

  /** §5.4.1: a log is at least as up to date as ours if its last term is higher, or equal with an index at least ours. */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    return lastTerm > this.lastTerm || (lastTerm === this.lastTerm && lastIndex >= this.lastIndex);
  }

  /** The largest index <= `index` whose term is <= `term` (the snapshot index at the least). */
  lastIndexWithTermAtMost(index: number, term: number): number {
    let lo = this.snapshotIndex;
    let hi = Math.min(index, this.lastIndex);
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      if (this.term(mid)! <= term) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }
}
