// The replica's typed events: what changed, with the fields an operator needs. A listener that
// throws is logged and skipped; the tick loop never sees the error.
import type { ReplicaId } from '../core/types.js';
import type { Logger } from './logger.js';

/** A replica's role, as {@link ReplicaStatus} reports it. */
export type Role = 'follower' | 'candidate' | 'leader';

/** Every event a {@link Replica} emits, by name, with what its listeners receive. */
export interface ReplicaEvents {
  /** The leader this replica knows of changed (undefined: none known, e.g. during an election). */
  leader: { leaderId: ReplicaId | undefined; term: number };
  /** This replica's role changed. */
  role: { role: Role; previous: Role; term: number };
  /** This replica's term rose. */
  term: { term: number; previous: number };
  /**
   * The commit index rose: at most one event per tick, covering every index up to `commitIndex`.
   * Applied entries follow in the same tick.
   */
  commit: { commitIndex: number; previous: number };
  /**
   * A snapshot was taken of this replica's state machine (`taken`), or loaded from the leader
   * (`installed`, with `from`). `index` and `term` are its last included entry's.
   */
  snapshot: { kind: 'taken' | 'installed'; index: number; term: number; from?: ReplicaId };
  /** The voting members changed (a configuration entry was appended, truncated or installed). */
  membership: { voters: ReplicaId[]; previous: ReplicaId[] };
  /**
   * Loading or saving the replica's state failed (a storage error, a corrupt state, or the
   * state machine refusing the stored snapshot at start): the replica stopped for good
   * (`stopped` follows) and every pending request rejects with `error`.
   */
  storageError: { error: unknown };
  /**
   * The replica can tick no more: stopped, halted, or failed (`error` says which: a
   * {@link ReplicaStoppedError}, a storage error, a {@link StateMachineError}). Emitted once.
   */
  stopped: { error: unknown };
}

/** A listener of the event `K`. */
export type ReplicaListener<K extends keyof ReplicaEvents> = (event: ReplicaEvents[K]) => void;

/** Listeners by event name; emitting calls each in the order they were added. */
export class ReplicaEventHub {
  private readonly listeners = new Map<keyof ReplicaEvents, ((event: never) => void)[]>();

  constructor(private readonly logger: Logger) {}

  /** Adds `listener` for `name`; returns a function that removes it. */
  on<K extends keyof ReplicaEvents>(name: K, listener: ReplicaListener<K>): () => void {
    this.listeners.set(name, [...(this.listeners.get(name) ?? []), listener]);
    return () => this.off(name, listener);
  }

  /** Removes `listener` for `name`, if it was added. */
  off<K extends keyof ReplicaEvents>(name: K, listener: ReplicaListener<K>): void {
    const rest = (this.listeners.get(name) ?? []).filter((l) => l !== listener);
    if (rest.length > 0) this.listeners.set(name, rest);
    else this.listeners.delete(name);
  }

  /** Whether anyone listens for `name`: an event nobody hears is not even built. */
  has(name: keyof ReplicaEvents): boolean {
    return this.listeners.has(name);
  }

  /** Calls every listener of `name` with `event`; a listener that throws is logged, and the rest still run. */
  emit<K extends keyof ReplicaEvents>(name: K, event: ReplicaEvents[K]): void {
    for (const listener of this.listeners.get(name) ?? []) {
      try {
        (listener as ReplicaListener<K>)(event);
      } catch (err) {
        this.logger.warn({ event: name, err }, 'a replica event listener threw; the replica goes on');
      }
    }
  }
}
