import type { ReplicaId } from './types.js';

/**
 * The voting members as the log defines them (single-server changes, Ongaro's dissertation
 * §4.1): the latest configuration entry takes effect as soon as it is in the log, committed or
 * not, and a truncation that removes it restores the one before.
 */
export class Membership {
  /** Configuration entries still in the log: [index, members], in index order. */
  private configs: [number, ReplicaId[]][] = [];
  /** Every id that has been a member or is catching up to become one: the only accepted senders. */
  readonly known: Set<ReplicaId>;

  /** `base` is the configuration in effect before the log: from the snapshot or the options. */
  constructor(private base: ReplicaId[]) {
    this.known = new Set(base);
  }

  get voters(): ReplicaId[] { return this.configs.at(-1)?.[1] ?? this.base; }
  /** Index of the latest configuration entry still in the log; 0 if none. */
  get lastIndex(): number { return this.configs.at(-1)?.[0] ?? 0; }

  /** The configuration in effect at `index` (for a snapshot taken there). */
  at(index: number): ReplicaId[] {
    let members = this.base;
    for (const [i, m] of this.configs) if (i <= index) members = m;
    return members;
  }

  appended(index: number, members: ReplicaId[]): void {
    this.configs.push([index, members]);
    for (const id of members) this.known.add(id);
  }

  /** Forgets configuration entries at `index` or above; returns whether the voters changed. */
  truncated(index: number): boolean {
    const before = this.configs.length;
    while ((this.configs.at(-1)?.[0] ?? 0) >= index) this.configs.pop();
    return this.configs.length !== before;
  }

  /** A snapshot now covers `index`: its configuration (or the last one it covers) becomes the base. */
  compacted(index: number, members: ReplicaId[] | undefined): void {
    while (this.configs.length > 0 && this.configs[0]![0] <= index) this.base = this.configs.shift()![1];
    if (members) this.base = members;
    for (const id of this.base) this.known.add(id);
  }
}
