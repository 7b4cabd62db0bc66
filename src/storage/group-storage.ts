// One group's view of a SharedLog: the Storage a replica of that group is given.
import type { PersistentState, Storage, StorageBatch } from '../core/storage.js';

/** What a {@link GroupStorage} asks of its log. @internal */
export interface GroupHost<T, D> {
  loadGroup(group: number, handle: GroupStorage<T, D>): Promise<PersistentState<T, D>>;
  saveGroup(group: number, handle: GroupStorage<T, D>, batch: StorageBatch<T, D>): Promise<void>;
}

/**
 * The {@link Storage} of one Raft group in a {@link SharedLog}, from {@link SharedLog.group}.
 * Its saves are written together with those of the other groups (one write and one fsync for all
 * the saves that arrive in the same turn of the event loop) and each resolves once its record is
 * durable. `close()` (which `Replica.stop()` calls) releases only this handle; the log stays open
 * for the other groups. After {@link SharedLog.removeGroup}, its saves reject.
 */
export class GroupStorage<T, D> implements Storage<T, D> {
  /** @internal */
  closed = false;

  /** @internal */
  constructor(
    /** The group's id in the log. */
    readonly group: number,
    private readonly host: GroupHost<T, D>,
  ) {}

  /** Everything the group has saved (as the log read it back at open, plus every save since). */
  load(): Promise<PersistentState<T, D>> {
    return this.host.loadGroup(this.group, this);
  }

  /**
   * Queues the batch for the log's next write and resolves once that write is durable. Rejects
   * after this handle's `close()`, after the group's removal, and, once a write of the log has
   * failed, for every group: the end of the log is then unknown until it is opened again.
   */
  save(batch: StorageBatch<T, D>): Promise<void> {
    return this.host.saveGroup(this.group, this, batch);
  }

  /** Releases this handle: later saves through it reject. The log and the group's data stay. */
  async close(): Promise<void> {
    this.closed = true;
  }
}
