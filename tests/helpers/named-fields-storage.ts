import type { PersistentState, Storage, StorageBatch } from '../../src/index.js';

// A Storage as a user would write it over a database with one column per field: it keeps
// exactly the fields the exported Storage types name, and nothing else. If a field the replica
// needs after a restart were missing from those types, this storage would lose it.

/** The entries and the snapshot as the exported Storage types describe them. */
type StoredEntry = PersistentState<unknown, unknown>['entries'][number];
type StoredSnapshot = NonNullable<PersistentState<unknown, unknown>['snapshot']>;

/** Every field of `O`, optional ones included: the compiler checks the list is complete and exact. */
type Columns<O> = { readonly [K in keyof Required<O>]: true };

const ENTRY_COLUMNS: Columns<StoredEntry> = { index: true, term: true, kind: true, transition: true, config: true };
const SNAPSHOT_COLUMNS: Columns<StoredSnapshot> = {
  lastIncludedIndex: true,
  lastIncludedTerm: true,
  data: true,
  members: true,
};

/** One row: the named columns that hold a value, as JSON (a database would store them the same way). */
function toRow(value: object, columns: object): string {
  const row: Record<string, unknown> = {};
  for (const column of Object.keys(columns)) {
    const v = (value as Record<string, unknown>)[column];
    if (v !== undefined) row[column] = v;
  }
  return JSON.stringify(row);
}

/** A user-written storage: entries as rows keyed by index, the snapshot and the hard state as single rows. */
export class NamedFieldsStorage<T, D> implements Storage<T, D> {
  private term = 0;
  private votedFor: number | undefined;
  private snapshot: string | undefined;
  private readonly rows = new Map<number, string>();

  async load(): Promise<PersistentState<T, D>> {
    const indexes = [...this.rows.keys()].sort((a, b) => a - b);
    let snapshot: PersistentState<T, D>['snapshot'];
    if (this.snapshot !== undefined) {
      const row = JSON.parse(this.snapshot) as NonNullable<PersistentState<T, D>['snapshot']>;
      // A null column is not undefined: keep the difference, as the contract asks.
      snapshot = { ...row, data: 'data' in row ? row.data : (undefined as D) };
    }
    const entries = indexes.map((i) => JSON.parse(this.rows.get(i)!) as PersistentState<T, D>['entries'][number]);
    return { term: this.term, votedFor: this.votedFor, snapshot, entries };
  }

  async save(batch: StorageBatch<T, D>): Promise<void> {
    if (batch.hardState) ({ term: this.term, votedFor: this.votedFor } = batch.hardState);
    const dropFrom = (from: number): void => {
      for (const i of [...this.rows.keys()]) if (i >= from) this.rows.delete(i);
    };
    if (batch.truncateFrom !== undefined) dropFrom(batch.truncateFrom);
    if (batch.append && batch.append.length > 0) {
      dropFrom(batch.append[0]!.index);
      for (const e of batch.append) this.rows.set(e.index, toRow(e, ENTRY_COLUMNS));
    }
    if (batch.snapshot) {
      const s = batch.snapshot;
      this.snapshot = toRow(s, SNAPSHOT_COLUMNS);
      for (const i of [...this.rows.keys()]) if (i <= s.lastIncludedIndex) this.rows.delete(i);
    }
  }
}
