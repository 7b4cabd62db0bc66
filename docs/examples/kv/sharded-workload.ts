// Load and checks for a `tickraft-kv --groups N` cluster, shared by the demo (`npm run demo --
// --groups 64`) and the process test: writers that keep writing keys spread over every group and
// remember what was acknowledged, who leads each group, and the final check that every group's
// members agree and hold every acknowledged write.
import type { Agent } from 'node:http';
import { KvClient } from './client.js';
import { waitFor, type KvProcesses } from './processes.js';
import type { ShardedDump, ShardedStatus } from './sharded.js';
import { groupOf, membersOf } from './shards.js';

/** Options of {@link Writers}. */
export interface WritersOptions {
  /** The servers' --groups: each client remembers each group's leader. */
  groups: number;
  /** Concurrent client sessions, each writing its own keys one at a time. */
  lanes: number;
  /** Keys per lane, written round and round (so keys are overwritten). */
  keysPerLane: number;
  /** Prefix of every key and client id: unique per run. */
  prefix: string;
  agent?: Agent;
  /** Ms a write may take, retries included, before its outcome is taken as unknown. */
  deadline?: number;
}

/**
 * Client sessions writing over HTTP until stopped, each on its own keys, so that each key's last
 * acknowledged value is well defined. A write that fails (no answer within the deadline) has an
 * unknown outcome: it may still be applied, so its value is allowed too, until a later write of
 * the key is acknowledged.
 */
export class Writers {
  /** Each key's last acknowledged value. */
  readonly acked = new Map<string, string>();
  /** Per key, values written after the last acknowledged one whose outcome is unknown. */
  readonly unknown = new Map<string, Set<string>>();
  /** Writes acknowledged so far. */
  acks = 0;
  /** Writes that failed (outcome unknown). */
  failures = 0;
  private running = false;
  private lanes: Promise<void>[] = [];

  constructor(
    private readonly origins: string[],
    private readonly options: WritersOptions,
  ) {}

  /** A client session of this run (ids are unique per `name`). */
  client(name: string): KvClient {
    const { prefix, agent, deadline, groups } = this.options;
    const shard = (key: string): number => groupOf(key, groups);
    return new KvClient({ origins: this.origins, clientId: `${prefix}-${name}`, agent, deadline, shard });
  }

  /** Writes `value` under `key` through `client`, recording the outcome; resolves with whether it was acknowledged. */
  async write(client: KvClient, key: string, value: string): Promise<boolean> {
    try {
      await client.put(key, value);
    } catch {
      this.failures++;
      const u = this.unknown.get(key) ?? new Set<string>();
      this.unknown.set(key, u.add(value));
      return false;
    }
    this.acked.set(key, value);
    this.unknown.delete(key);
    this.acks++;
    return true;
  }

  /** Starts the lanes. */
  start(): void {
    this.running = true;
    const { lanes, keysPerLane, prefix } = this.options;
    this.lanes = Array.from({ length: lanes }, async (_, lane) => {
      const client = this.client(`lane${lane}`);
      for (let i = 0; this.running; i++) await this.write(client, `${prefix}-${lane}-${i % keysPerLane}`, `v${i}`);
    });
  }

  /** Stops the lanes after their write in flight. */
  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.lanes);
  }
}

/** The self-reported leader of each group among `among` (undefined where none answers as leader). */
export async function groupLeaders(
  cluster: KvProcesses,
  groups: number,
  among = cluster.ids,
): Promise<(number | undefined)[]> {
  const leaders: (number | undefined)[] = Array.from({ length: groups }, () => undefined);
  const all = await Promise.all(among.map((id) => cluster.status<ShardedStatus>(id)));
  for (const s of all) {
    if (!s) continue;
    s.leaders.split(',').forEach((l, g) => {
      if (l === String(s.id)) leaders[g] = s.id;
    });
  }
  return leaders;
}

/** Waits until every group has a leader among `among`; resolves with the leader of each. */
export function waitForGroupLeaders(
  cluster: KvProcesses,
  groups: number,
  among = cluster.ids,
  timeout = 30_000,
): Promise<number[]> {
  return waitFor(
    `a leader in each of ${groups} groups`,
    async () => {
      const leaders = await groupLeaders(cluster, groups, among);
      return leaders.every((l) => l !== undefined) ? (leaders as number[]) : undefined;
    },
    timeout,
    20,
  );
}

/**
 * Waits until, in every group, all members have applied the same index and hold the same data
 * (the writes must have stopped); resolves with every member's dump.
 */
export function waitForAgreement(cluster: KvProcesses, groups: number, timeout = 30_000): Promise<ShardedDump[]> {
  return waitFor(
    'the members of every group to agree',
    async () => {
      const dumps = await Promise.all(cluster.ids.map((id) => cluster.dump<ShardedDump>(id).catch(() => undefined)));
      if (dumps.some((d) => d === undefined)) return undefined;
      return disagreements(dumps as ShardedDump[], groups, cluster.ids).length === 0
        ? (dumps as ShardedDump[])
        : undefined;
    },
    timeout,
    200,
  );
}

/** The groups whose members differ (applied index or data), one line each. */
export function disagreements(dumps: ShardedDump[], groups: number, ids: number[]): string[] {
  const out: string[] = [];
  for (let g = 0; g < groups; g++) {
    const members = membersOf(g, ids);
    const states = members.map((id) => dumps.find((d) => d.id === id)?.groups[g]);
    if (states.some((s) => s === undefined)) {
      out.push(`group ${g}: missing on a member`);
      continue;
    }
    const canonical = (s: (typeof states)[number]): string =>
      JSON.stringify([s!.lastApplied, Object.entries(s!.data).sort(([a], [b]) => (a < b ? -1 : 1))]);
    const first = canonical(states[0]);
    if (states.some((s) => canonical(s) !== first))
      out.push(`group ${g}: members ${members.join(', ')} applied ${states.map((s) => s!.lastApplied).join(' / ')}`);
  }
  return out;
}

/**
 * Every acknowledged write, checked on every member of its group: the value must be the last
 * acknowledged one (or one written after it whose outcome is unknown). Returns one line per
 * key that is wrong somewhere.
 */
export function lostWrites(dumps: ShardedDump[], groups: number, writers: Writers): string[] {
  const out: string[] = [];
  for (const [key, value] of writers.acked) {
    const g = groupOf(key, groups);
    for (const d of dumps) {
      const state = d.groups[g];
      if (!state) continue;
      const found = state.data[key];
      if (found !== value && !(found !== undefined && writers.unknown.get(key)?.has(found)))
        out.push(`${key} (group ${g}) on ${d.id}: ${found ?? 'absent'}, acknowledged ${value}`);
    }
  }
  return out;
}
