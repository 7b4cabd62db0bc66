import type { Snapshot, StateMachine, TransitionId, TransitionState } from '../../src/index.js';

/** A transition of the test state machine: ids are unique per submission unless a test reuses one. */
export interface TestTransition {
  readonly id: string;
}

/** Snapshot data: how many transitions the state held and a hash of all of them, in order. */
export interface TestSnapshotData {
  readonly count: number;
  readonly hash: number;
}

/** Called on every application, so a simulation can compare replicas index by index. */
export type ApplyObserver = (replicaId: number, index: number, hash: number, transition: TestTransition) => void;

/** FNV-style rolling hash: equal hashes at an index mean (with overwhelming odds) equal histories. */
export function extendHash(hash: number, id: string): number {
  let h = hash ^ 0x9e3779b9;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 16777619);
  return h >>> 0;
}

/**
 * A state machine that records everything the replica tells it and checks the promises of
 * API.md as they happen: application in index order without gaps, snapshots only newer than
 * what is applied, createSnapshot at the last applied index, sane state sequences.
 */
export class RecordingStateMachine implements StateMachine<TestTransition, TestSnapshotData> {
  pending: TestTransition[] = [];
  lastIndex = 0;
  hash = 0;
  count = 0;
  readonly appliedIds: string[] = [];
  /** Every index applied, noop included: configuration entries show up as gaps. */
  readonly appliedIndexes: number[] = [];
  readonly states = new Map<TransitionId, TransitionState[]>();
  readonly violations: string[] = [];
  snapshotsSet = 0;

  /** `isConfig(i)` tells whether index `i` holds a configuration entry, which application skips. */
  constructor(
    readonly replicaId: number,
    private readonly observe?: ApplyObserver,
    private readonly noopId = 'noop',
    private readonly isConfig?: (index: number) => boolean,
  ) {}

  submit(...transitions: TestTransition[]): void {
    this.pending.push(...transitions);
  }

  getPendingTransitions(): TestTransition[] {
    const p = this.pending;
    this.pending = [];
    return p;
  }

  applyTransition(t: TestTransition, index: number): void {
    let expected = this.lastIndex + 1;
    while (expected < index && this.isConfig?.(expected)) expected++;
    if (index !== expected)
      this.violations.push(`replica ${this.replicaId} applied index ${index} after ${this.lastIndex}`);
    this.lastIndex = index;
    this.appliedIndexes.push(index);
    this.hash = extendHash(this.hash, t.id);
    if (t.id !== this.noopId) {
      this.count++;
      this.appliedIds.push(t.id);
    }
    this.observe?.(this.replicaId, index, this.hash, t);
  }

  registerTransitionState(id: TransitionId, state: TransitionState): void {
    if (id === this.noopId) this.violations.push(`replica ${this.replicaId} reported a state for the noop`);
    let list = this.states.get(id);
    if (!list) this.states.set(id, (list = []));
    list.push(state);
  }

  createSnapshot(lastIncludedIndex: number, lastIncludedTerm: number): Snapshot<TestSnapshotData> {
    // Configuration entries after the last transition count as applied: they change nothing here.
    let applied = this.lastIndex;
    while (applied < lastIncludedIndex && this.isConfig?.(applied + 1)) applied++;
    if (lastIncludedIndex !== applied)
      this.violations.push(
        `replica ${this.replicaId} asked to snapshot ${lastIncludedIndex} at applied ${this.lastIndex}`,
      );
    this.lastIndex = applied;
    return { lastIncludedIndex, lastIncludedTerm, data: { count: this.count, hash: this.hash } };
  }

  setSnapshot(s: Snapshot<TestSnapshotData>): void {
    if (s.lastIncludedIndex <= this.lastIndex)
      this.violations.push(
        `replica ${this.replicaId} given snapshot ${s.lastIncludedIndex} at applied ${this.lastIndex}`,
      );
    this.lastIndex = s.lastIncludedIndex;
    this.hash = s.data.hash;
    this.count = s.data.count;
    this.snapshotsSet++;
    this.observe?.(this.replicaId, s.lastIncludedIndex, s.data.hash, { id: '(snapshot)' });
  }

  /** The statuses reported for `id`, in order. */
  statusesOf(id: TransitionId): string[] {
    return (this.states.get(id) ?? []).map((s) => (s.status === 'abandoned' ? `abandoned:${s.reason}` : s.status));
  }
}
