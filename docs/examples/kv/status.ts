// `tickraft-kv status --http <host:port,...>`: asks one of the given members for the HTTP
// addresses of all (GET /status lists them), then each member for its GET /status, and prints
// one row per member: role, term, leader, commit and applied index, and how far it lags; then
// the leader's view: each follower's match index, lag and state, and any membership change or
// leadership transfer under way. With --groups, one row per process: the groups it hosts and
// leads, and how many it knows no leader of.
import { parseArgs } from 'node:util';

import { UsageError } from './flags.js';
import type { ShardedStatus } from './sharded.js';

interface StatusJson {
  status: {
    id: number;
    role: string;
    term: number;
    leaderId?: number;
    commitIndex: number;
    lastApplied: number;
    lastLogIndex: number;
    followers?: { id: number; voter: boolean; matchIndex: number; lag: number; state: string }[];
    membershipChange?: { id: number; kind: string; phase: string };
    transfer?: { to: number };
  };
  membership: number[] | null;
  httpAddresses?: Record<string, string>;
}

/** Runs the subcommand with `argv` (after `status`); resolves with the exit code. */
export async function statusCommand(argv: string[], out: NodeJS.WritableStream = process.stdout): Promise<number> {
  let http: string | undefined;
  try {
    ({
      values: { http },
    } = parseArgs({ args: argv, strict: true, options: { http: { type: 'string' } } }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (http === undefined || http === '')
    throw new UsageError('status needs --http <host:port,...> of at least one member');
  const given = http.split(',').map((item) => {
    const address = item.trim().replace(/^\d+=/, '');
    if (!/^(\[[^\]]+\]|[^:[\]/]+):\d+$/.test(address))
      throw new UsageError(`--http: expected host:port, got ${JSON.stringify(item)}`);
    return `http://${address}`;
  });
  let members: Map<number, string> | undefined;
  for (const origin of given) {
    const s = await fetchStatus(origin);
    if (s === undefined) continue;
    members = new Map(Object.entries(s.httpAddresses ?? {}).map(([id, o]) => [Number(id), o]));
    members.set('groups' in s ? (s as unknown as ShardedStatus).id : s.status.id, origin);
    break;
  }
  if (!members) {
    process.stderr.write(`tickraft-kv status: no member answered at ${given.join(', ')}\n`);
    return 1;
  }
  const ids = [...members.keys()].sort((a, b) => a - b);
  const all = await Promise.all(ids.map((id) => fetchStatus(members!.get(id)!)));
  if (all.some((s) => s !== undefined && 'groups' in s)) return groupsTable(ids, members, all, out);
  const commit = Math.max(0, ...all.map((s) => s?.status.commitIndex ?? 0));
  const rows = [['ID', 'ROLE', 'TERM', 'LEADER', 'COMMIT', 'APPLIED', 'LAST-LOG', 'LAG', 'HTTP']];
  ids.forEach((id, i) => {
    const s = all[i]?.status;
    const origin = members!.get(id)!;
    if (!s) return rows.push([String(id), 'unreachable', '-', '-', '-', '-', '-', '-', origin]);
    const voter = all[i]!.membership === null || all[i]!.membership!.includes(id);
    rows.push([
      String(id),
      voter ? s.role : `${s.role} (not a voter)`,
      String(s.term),
      String(s.leaderId ?? '-'),
      String(s.commitIndex),
      String(s.lastApplied),
      String(s.lastLogIndex),
      String(commit - s.lastApplied),
      origin,
    ]);
  });
  table(rows, out);
  // The leader's own view: how far each follower is, and what change or transfer is under way.
  const lead = all.find((s) => s?.status.role === 'leader')?.status;
  if (lead) {
    out.write(`\nleader ${lead.id}, term ${lead.term}, last log index ${lead.lastLogIndex}:\n`);
    const followers = [['FOLLOWER', 'VOTER', 'MATCH', 'LAG', 'STATE']];
    for (const f of lead.followers ?? []) {
      followers.push([String(f.id), f.voter ? 'yes' : 'no', String(f.matchIndex), String(f.lag), f.state]);
    }
    table(followers, out);
    const change = lead.membershipChange;
    out.write(`membership change: ${change ? `${change.kind} ${change.id} (${change.phase})` : 'none'}\n`);
    out.write(`leadership transfer: ${lead.transfer ? `to ${lead.transfer.to}` : 'none'}\n`);
  }
  return all.some((s) => s === undefined) ? 1 : 0;
}

/** The table of a sharded cluster (--groups): one row per process. Resolves with the exit code. */
function groupsTable(
  ids: number[],
  members: Map<number, string>,
  all: (StatusJson | ShardedStatus | undefined)[],
  out: NodeJS.WritableStream,
): number {
  const rows = [['ID', 'GROUPS', 'LEADING', 'NO-LEADER', 'QUIESCENT', 'HTTP']];
  ids.forEach((id, i) => {
    const s = all[i] as ShardedStatus | undefined;
    if (!s) return rows.push([String(id), 'unreachable', '-', '-', '-', members.get(id)!]);
    const none = s.leaders.split(',').filter((l) => l === '-').length;
    rows.push([String(id), String(s.hosted), String(s.leading), String(none), String(s.quiescent), members.get(id)!]);
  });
  table(rows, out);
  return all.some((s) => s === undefined) ? 1 : 0;
}

/** Prints rows as columns, each as wide as its widest cell. */
function table(rows: string[][], out: NodeJS.WritableStream): void {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  for (const r of rows)
    out.write(
      `${r
        .map((cell, c) => cell.padEnd(widths[c]!))
        .join('  ')
        .trimEnd()}\n`,
    );
}

async function fetchStatus(origin: string): Promise<StatusJson | undefined> {
  try {
    const res = await fetch(`${origin}/status`, { signal: AbortSignal.timeout(3000) });
    return res.ok ? ((await res.json()) as StatusJson) : undefined;
  } catch {
    return undefined;
  }
}
