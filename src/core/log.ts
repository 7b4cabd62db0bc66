import type { Entry } from './message.js';

/**
 * A cheap estimate of a value's encoded size in bytes, with no codec: strings count their length,
 * other scalars 8, containers their parts. It walks the value once; the log caches the result.
 */
export function sizeOf(v: unknown): number {
  if (typeof v !== 'object' || v === null) return typeof v === 'string' ? v.length + 2 : 8;
  let n = 2;
  for (const k in v) n += k.length + 2 + sizeOf((v as Record<string, unknown>)[k]);
  return n;
}

/** An entry's estimated size: its transition, its members if any, and an allowance for index, term and kind. */
export const entrySize = (e: Entry<unknown>): number => 60 + sizeOf(e.transition) + 8 * (e.config?.length ?? 0);

/**
 * The entries after the latest snapshot, addressed by index in O(1). Terms never decrease
 * along a Raft log, which lets {@link RaftLog.lastIndexWithTermAtMost} binary-search.
 */
export class RaftLog<T> {
  private entries: Entry<T>[];
  /** Running totals of `entrySize` over `entries`, filled on demand (only a leader asks): `sums[k]` covers 0..k. */
  private sums: number[] = [];

  constructor(public snapshotIndex: number, public snapshotTerm: number, entries: Entry<T>[]) {
    this.entries = entries;
  }

  get lastIndex(): number { return this.snapshotIndex + this.entries.length; }
  get lastTerm(): number { return this.entries.at(-1)?.term ?? this.snapshotTerm; }

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

  /** The estimated size ({@link entrySize}, computed once per entry) of the entries held from `from` to `to`. */
  bytes(from: number, to: number): number {
    return this.sizeUpTo(to) - this.sizeUpTo(Math.max(from, this.snapshotIndex + 1) - 1);
  }

  /** The last index in `from`..`to` such that the entries from `from` fit in `budget` bytes; `from` at the least. */
  fit(from: number, to: number, budget: number): number {
    const most = this.sizeUpTo(from - 1) + budget;
    this.sizeUpTo(to);
    return search(from, to, (i) => this.sums[i - this.snapshotIndex - 1]! <= most);
  }

  /** The estimated size of the entries held up to `index`. */
  private sizeUpTo(index: number): number {
    const k = index - this.snapshotIndex - 1;
    for (let i = this.sums.length; i <= k; i++) this.sums.push((this.sums[i - 1] ?? 0) + entrySize(this.entries[i]!));
    return k < 0 ? 0 : this.sums[k]!;
  }

  append(entry: Entry<T>): void { this.entries.push(entry); }

  /** Removes every entry at `index` or above and returns them. */
  truncateFrom(index: number): Entry<T>[] {
    this.sums.length = Math.min(this.sums.length, index - this.snapshotIndex - 1);
    return this.entries.splice(index - this.snapshotIndex - 1);
  }

  /** Drops every entry up to `index`, which a snapshot with that index and term now covers. */
  compact(index: number, term: number): void {
    this.entries = index >= this.lastIndex ? [] : this.entries.slice(index - this.snapshotIndex);
    const cut = this.sums[index - this.snapshotIndex - 1] ?? 0;
    this.sums = this.sums.slice(index - this.snapshotIndex).map((sum) => sum - cut);
    this.snapshotIndex = index;
    this.snapshotTerm = term;
  }

  /**
   * §5.4.1: a log is at least as up to date as ours if its last term is higher, or equal with an
   * index at least ours.
   */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    return lastTerm > this.lastTerm || (lastTerm === this.lastTerm && lastIndex >= this.lastIndex);
  }

  /** The largest index <= `index` whose term is <= `term` (the snapshot index at the least). */
  lastIndexWithTermAtMost(index: number, term: number): number {
    return search(this.snapshotIndex, Math.min(index, this.lastIndex), (i) => this.term(i)! <= term);
  }
}

/** The largest `i` in `lo`..`hi` for which `ok` holds, given it holds at `lo` and, once false, stays false. */
function search(lo: number, hi: number, ok: (i: number) => boolean): number {
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (ok(mid)) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}
