// How `tickraft-kv --groups N` splits the keys and places the groups. Pure functions: the
// server, the demo and the tests compute the same answers.

/** How many processes replicate each group (all of them when there are fewer). */
export const REPLICAS_PER_GROUP = 3;

/**
 * The group of a key: the 32-bit FNV-1a hash of its UTF-8 bytes, modulo `groups`. Groups are
 * numbered 0 to `groups - 1`. Stable across processes, versions and restarts, so `--groups`
 * must stay the same for the life of the data.
 */
export function groupOf(key: string, groups: number): number {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(key, 'utf8')) h = Math.imul(h ^ byte, 0x01000193) >>> 0;
  return h % groups;
}

/**
 * The members of group `g`: with the process ids sorted ascending as p[0..n-1], the group is on
 * p[g mod n], p[(g+1) mod n] and p[(g+2) mod n] (every process when n ≤ 3), so each process
 * hosts about 3/n of the groups.
 */
export function membersOf(g: number, ids: Iterable<number>): number[] {
  const sorted = [...ids].sort((a, b) => a - b);
  if (sorted.length <= REPLICAS_PER_GROUP) return sorted;
  return Array.from({ length: REPLICAS_PER_GROUP }, (_, k) => sorted[(g + k) % sorted.length]!);
}

/** A key of group `g`: `${prefix}${i}` for the smallest i ≥ 0 that falls in it. */
export function keyInGroup(g: number, groups: number, prefix: string): string {
  for (let i = 0; ; i++) if (groupOf(`${prefix}${i}`, groups) === g) return `${prefix}${i}`;
}
