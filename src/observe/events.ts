// The replica's typed events: what changed, with the fields an operator needs. A listener that
// throws is logged and skipped; the tick loop never sees the error.
import type { ReplicaId } from '../core/types.js';
import type { Logger } from './logger.js';

/** A replica's role, as {@link ReplicaStatus} reports it. */
export type Role = 'follower' | 'candidate' | 'leader';

/** The `leader` event: the leader this replica knows of changed. */
export interface LeaderEvent {
  /** The new leader; undefined when none is known (for example during an election). */
  leaderId: ReplicaId | undefined;
  /** This replica's term at the change. */
  term: number;
}

/** The `role` event: this replica's role changed. */
export interface RoleEvent {
  /** Its role now. */
  role: Role;
  /** Its role before. */
  previous: Role;
  /** Its term now. */
  term: number;
}

/** The `term` event: this replica's term rose. */
export interface TermEvent {
  /** The term now. */
  term: number;
  /** The term before. */
  previous: number;
}

/** The `commit` event: the commit index rose (at most one event per tick). */
export interface CommitEvent {
  /** The commit index now; every index up to it is committed, and applied in the same tick. */
  commitIndex: number;
  /** The commit index before. */
  previous: number;
}

/** The `snapshot` event: a snapshot was taken here, or loaded from the leader. */
export interface SnapshotEvent {
  /** `taken` of this replica's state machine, or `installed` from the leader. */
  kind: 'taken' | 'installed';
  /** The index of its last included entry. */
  index: number;
  /** The term of its last included entry. */
  term: number;
  /** For `installed`: the leader it came from. */
  from?: ReplicaId;
}

/** The `membership` event: the voting members changed. */
export interface MembershipEvent {
  /** The voting members now, in ascending order. */
  voters: ReplicaId[];
  /** The voting members before. */
  previous: ReplicaId[];
}

/** The `storageError` and `stopped` events: why the replica can tick no more. */
export interface FailureEvent {
  /** The error every pending and later request rejects with. */
  error: unknown;
}

/** Every event a {@link Replica} emits, by name, with what its listeners receive. */
export interface ReplicaEvents {
  /** The leader this replica knows of changed. */
  leader: LeaderEvent;
  /** This replica's role changed. */
  role: RoleEvent;
  /** This replica's term rose. */
  term: TermEvent;
  /** The commit index rose: at most one event per tick. Applied entries follow in the same tick. */
  commit: CommitEvent;
  /** A snapshot was taken of this replica's state machine, or loaded from the leader. */
  snapshot: SnapshotEvent;
  /** The voting members changed (a configuration entry was appended, truncated or installed). */
  membership: MembershipEvent;
  /**
   * Loading or saving the replica's state failed (a storage error, a corrupt state, or the
   * state machine refusing the stored snapshot at start): the replica stopped for good
   * (`stopped` follows) and every pending request rejects with `error`.
   */
  storageError: FailureEvent;
  /**
   * The replica can tick no more: stopped, halted, or failed (`error` says which: a
   * {@link ReplicaStoppedError}, a storage error, a {@link StateMachineError}). Emitted once.
   */
  stopped: FailureEvent;
}

/** A listener of the event `K`. */
export type ReplicaListener<K extends keyof ReplicaEvents> = (event: ReplicaEvents[K]) => void;

/** Listeners by event name; emitting calls each in the order they were added. */
export class ReplicaEventHub {
  /** Made on the first `on()`: most replicas of a multi-raft host never have a listener, and an empty Map costs. */
  private listeners: Map<keyof ReplicaEvents, ((event: never) => void)[]> | undefined;

  constructor(private readonly logger: Logger) {}

  /** Adds `listener` for `name`; returns a function that removes it. */
  on<K extends keyof ReplicaEvents>(name: K, listener: ReplicaListener<K>): () => void {
    this.listeners ??= new Map();
    this.listeners.set(name, [...(this.listeners.get(name) ?? []), listener]);
    return () => this.off(name, listener);
  }

  /** Removes `listener` for `name`, if it was added. */
  off<K extends keyof ReplicaEvents>(name: K, listener: ReplicaListener<K>): void {
    const rest = (this.listeners?.get(name) ?? []).filter((l) => l !== listener);
    if (rest.length > 0) this.listeners!.set(name, rest);
    else this.listeners?.delete(name);
  }

  /** Whether anyone listens for `name`: an event nobody hears is not even built. */
  has(name: keyof ReplicaEvents): boolean {
    return this.listeners?.has(name) ?? false;
  }

  /** Calls every listener of `name` with `event`; a listener that throws is logged, and the rest still run. */
  emit<K extends keyof ReplicaEvents>(name: K, event: ReplicaEvents[K]): void {
    for (const listener of this.listeners?.get(name) ?? []) {
      try {
        (listener as ReplicaListener<K>)(event);
      } catch (err) {
        this.logger.warn({ event: name, err }, 'a replica event listener threw; the replica goes on');
      }
    }
  }
}
