import type { Raft } from '../../src/core/raft.js';
import type { StateMachineTransition } from '../../src/index.js';

/**
 * Raft's invariants over one group's replicas, checked incrementally as a run goes: Election
 * Safety, terms that never go back, one vote per term, Log Matching, Leader Completeness, State
 * Machine Safety (through {@link RaftInvariants.observeApply}) and commit within the log. One
 * instance per group: the simulation of one cluster has one, the multi-raft simulation one per group.
 */
export class RaftInvariants<T extends StateMachineTransition & { readonly id: string | number }> {
  /** @param violations - Where every violation found goes, in order. */
  constructor(readonly violations: string[] = []) {}

  private readonly leaders = new Map<number, number>();
  /** index → the hash of the history applied up to it, by whoever applied it first. */
  private readonly appliedHash = new Map<number, number>();
  /** index → term and transition id of a committed entry. */
  private readonly committed = new Map<number, { term: number; id: string; seenInTerm: number }>();
  private committedUpTo = 0;
  private readonly highestTerm = new Map<number, number>();
  private readonly votes = new Map<string, number>();
  private readonly logChecked = new Map<number, { upTo: number; appended: number }>();
  /** (index:term) → transition id, for Log Matching. */
  private readonly entryAt = new Map<string, string>();

  /** A replica applied (or loaded a snapshot up to) `index`, its history hashing to `hash`. */
  observeApply(replicaId: number, index: number, hash: number): void {
    const first = this.appliedHash.get(index);
    if (first === undefined) this.appliedHash.set(index, hash);
    else if (first !== hash)
      this.violations.push(`State Machine Safety: replica ${replicaId} applied a different history at index ${index}`);
  }

  /** A replica restarted: its log is read afresh at the next check. */
  restarted(id: number): void {
    this.logChecked.delete(id);
  }

  /** Checks replica `id`'s algorithm state against what every check so far saw. */
  check<D>(id: number, raft: Raft<T, D>): void {
    const { term, role, votedFor, log, commitIndex } = raft;
    // Election Safety: at most one leader per term.
    if (role.kind === 'leader') {
      const other = this.leaders.get(term);
      if (other !== undefined && other !== id)
        this.violations.push(`Election Safety: ${other} and ${id} both lead term ${term}`);
      this.leaders.set(term, id);
    }
    // Terms never go back, across restarts too; one vote per term.
    if (term < (this.highestTerm.get(id) ?? 0))
      this.violations.push(`replica ${id}'s term went back from ${this.highestTerm.get(id)} to ${term}`);
    this.highestTerm.set(id, term);
    if (votedFor !== undefined) {
      const key = `${id}:${term}`;
      const earlier = this.votes.get(key);
      if (earlier !== undefined && earlier !== votedFor)
        this.violations.push(`replica ${id} voted for ${earlier} and ${votedFor} in term ${term}`);
      this.votes.set(key, votedFor);
    }
    // Log Matching, incrementally: entries appended since the last check.
    const seen = this.logChecked.get(id) ?? {
      upTo: log.snapshotIndex,
      appended: raft.metrics.entriesAppended - (log.lastIndex - log.snapshotIndex),
    };
    const appendedNow = raft.metrics.entriesAppended - seen.appended;
    const from = Math.max(log.snapshotIndex + 1, Math.min(seen.upTo + 1, log.lastIndex - appendedNow + 1));
    for (let i = from; i <= log.lastIndex; i++) {
      const e = log.entry(i)!;
      const key = `${i}:${e.term}`;
      // A configuration entry is told apart by its members too.
      const tag = e.config ? `${String(e.transition.id)}[${e.config.join(',')}]` : String(e.transition.id);
      const known = this.entryAt.get(key);
      if (known === undefined) this.entryAt.set(key, tag);
      else if (known !== tag) this.violations.push(`Log Matching: index ${i} term ${e.term} holds ${known} and ${tag}`);
      if (i > 1 && i > log.snapshotIndex + 1 && log.term(i - 1)! > e.term)
        this.violations.push(`replica ${id}: terms decrease at index ${i}`);
    }
    this.logChecked.set(id, { upTo: log.lastIndex, appended: raft.metrics.entriesAppended });
    // Committed entries are never lost or changed (Leader Completeness, State Machine Safety).
    for (let i = this.committedUpTo + 1; i <= commitIndex; i++) {
      const e = log.entry(i);
      // Known committed by this replica's term at the latest: every leader of a later term must hold it.
      if (e) this.committed.set(i, { term: e.term, id: String(e.transition.id), seenInTerm: term });
    }
    if (commitIndex > this.committedUpTo && log.entry(commitIndex)) this.committedUpTo = commitIndex;
    if (role.kind === 'leader') {
      for (let i = Math.max(log.snapshotIndex + 1, this.committedUpTo - 200); i <= this.committedUpTo; i++) {
        const c = this.committed.get(i);
        const e = log.entry(i);
        if (c && c.seenInTerm < term && (!e || e.term !== c.term || String(e.transition.id) !== c.id))
          this.violations.push(
            `Leader Completeness: leader ${id} of term ${term} lacks entry ${i}, committed by term ${c.seenInTerm}`,
          );
      }
    }
    if (commitIndex > log.lastIndex)
      this.violations.push(`replica ${id} committed ${commitIndex} beyond its log ${log.lastIndex}`);
  }
}
