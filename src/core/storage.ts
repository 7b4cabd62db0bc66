import type { CoreSnapshot, Entry } from './message.js';
import type { ReplicaId } from './types.js';

/**
 * What a {@link Storage} has saved: everything a replica needs to restart safely. Entries and the
 * snapshot carry the fields {@link Entry} and {@link CoreSnapshot} name (a configuration entry's
 * `config`, a snapshot's `members`): a storage must give every one of them back, since a
 * restarted replica takes its membership from them.
 */
export interface PersistentState<T, D> {
  /** The latest term the replica has seen. */
  term: number;
  /** The candidate it voted for in `term`, if any. */
  votedFor: ReplicaId | undefined;
  /** The latest snapshot, if any, with its `members`. */
  snapshot: CoreSnapshot<D> | undefined;
  /** Every entry after the snapshot, in index order, with their `noop` and `config`. */
  entries: Entry<T>[];
}

/**
 * One group commit: the changes of one tick. A storage applies the fields in the order
 * listed here and makes them durable together.
 */
export interface StorageBatch<T, D> {
  /** The new term and vote. */
  hardState?: {
    /** The current term. */
    term: number;
    /** The vote cast in that term, if any. */
    votedFor: ReplicaId | undefined;
  };
  /** Remove every entry with index >= this. */
  truncateFrom?: number;
  /**
   * Then append these, in index order. They follow the last saved entry, except in a batch
   * that also carries a snapshot: there they may start right after the snapshot's
   * `lastIncludedIndex`, the entries in between being covered by it.
   */
  append?: Entry<T>[];
  /** Then keep this snapshot, its `members` included; entries it covers may be dropped. */
  snapshot?: CoreSnapshot<D>;
}

/**
 * The replica's durable memory. Users may implement it over their own database; the package
 * ships {@link MemoryStorage} and a durable file storage.
 *
 * Rules: `load` is called once, by the replica's first tick, before any `save`. `save` is never
 * called again before the previous call resolved. A replica restarted with the same storage
 * must find everything every resolved `save` wrote.
 */
export interface Storage<T, D> {
  /** Everything saved so far. */
  load(): Promise<PersistentState<T, D>>;
  /**
   * Applies the batch in the order of its fields and resolves only once it is durable. Entries
   * and snapshots are plain data: store every field as given, at least every field
   * {@link Entry} and {@link CoreSnapshot} name. A rejection stops the replica; nothing that
   * depends on the batch has been sent.
   */
  save(batch: StorageBatch<T, D>): Promise<void>;
}
