// The command line of the key-value server: parsing and checking every flag, with one clear
// message per mistake. Nothing here touches the network or the disk.
import { parseArgs } from 'node:util';

import { isLogLevel, LOG_LEVELS, type LogLevel } from './log.js';

/** Where something listens. */
export interface Address {
  host: string;
  port: number;
}

/** The server's configuration, as the flags give it. */
export interface ServerFlags {
  id: number;
  data: string;
  /** Raft (TCP) address of every member, this one included. */
  peers: Map<number, Address>;
  /** HTTP address of every member, this one included. */
  http: Map<number, Address>;
  secret: string;
  heartbeat: number;
  election: [number, number];
  snapshotDelta: number;
  fsync: boolean;
  /**
   * The replica's `leaderSendsBeforeSave` (dissertation §10.2.1): on here, because every client of
   * this server retries a write whose outcome it does not know, and its session makes the retry
   * apply at most once (see the guide on what the option changes).
   */
  sendBeforeSave: boolean;
  timeout: number;
  quiet: boolean;
  /** What to log (JSON on stdout, readable on a terminal); --quiet means `error`. */
  logLevel: LogLevel;
  /** Joining a running cluster: --peers and --http list its current members plus this one. */
  join: boolean;
  /**
   * Raft groups the keys are split over (shards.ts): 1 is one replica per process; more runs a
   * RaftHost with one SharedLog (sharded.ts).
   */
  groups: number;
}

export const USAGE = `usage: tickraft-kv --id <n> --data <dir> --peers <id=host:port,...> --http <id=host:port,...> [options]
       tickraft-kv status --http <host:port,...>
       tickraft-kv --help | --version

A replicated key-value store: one Raft replica with its HTTP API. \`status\` asks the members
(found through any one of the given HTTP addresses) for their GET /status and prints a table.

example (one of three; start 2 and 3 the same way with their own --id and --data):
  TICKRAFT_SECRET='a long shared secret' tickraft-kv --id 1 --data ./data/1 \\
    --peers 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003 \\
    --http 1=127.0.0.1:8001,2=127.0.0.1:8002,3=127.0.0.1:8003
  tickraft-kv status --http 127.0.0.1:8001

required:
  --id <n>                 this replica's id (a positive integer listed in --peers and --http)
  --data <dir>             directory for the replica's log and snapshots (created if missing)
  --peers <list>           Raft address of every member, this one included: 1=127.0.0.1:7001,2=...
  --http <list>            HTTP address of every member, same ids: 1=127.0.0.1:8001,2=...
  --secret <string>        cluster secret, at least 16 bytes (or env TICKRAFT_SECRET); it authenticates
                           every connection and frame; traffic is not encrypted

optional:
  --heartbeat <ms>         leader heartbeat interval (default 50)
  --election <min-max>     election timeout range in ms (default 150-300)
  --snapshot-delta <n>     compact the log every n applied entries; 0 = never (default 1000)
  --fsync <on|off>         wait for the disk on every save (default on)
  --send-before-save <on|off>
                           a leader sends new entries while it saves them, and counts itself
                           only once they are durable (default on: one disk sync less per write;
                           clients retry unknown outcomes through their sessions). No effect
                           with --groups > 1: the host sends after its log's write anyway
  --timeout <ms>           answer 504 to a request not applied within this time (default 5000)
  --groups <n>             split the keys over n Raft groups (default 1): key k is in group
                           FNV-1a(k) mod n; with ids p0 < p1 < ..., group g is on p(g), p(g+1),
                           p(g+2) (mod the count; all processes when 3 or fewer). One RaftHost,
                           one connection per pair of processes and one log (one fsync per tick)
                           for all groups; a process answers a key's request if it leads the
                           key's group, else 307 to that group's leader. Leaders are spread by
                           transfers every 2 s. n must not change for the life of the data;
                           no --join, membership changes or transfers with n > 1
  --join                   join a running cluster: --peers/--http list its current members and
                           this replica, which waits (as a non-voter) until a leader adds it
                           with POST /members
  --log-level <level>      ${LOG_LEVELS.join(', ')} (default info); logs are JSON lines on
                           stdout, readable lines when stdout is a terminal
  --quiet                  log only errors (--log-level error)
  -h, --help               print this help
  -v, --version            print the version

Fatal errors (a bad flag, a data directory that cannot be used or is locked by another process,
a port in use) are one line on stderr, and the exit code is not 0: 2 for a bad flag, else 1.

HTTP API: PUT /kv/<key> (body = value, at most 1 MiB: 413 beyond), GET /kv/<key> (a linearizable
read by read index), DELETE /kv/<key>, GET /status, GET /debug/dump (local state, not
linearizable; per group with --groups). Headers x-client-id and x-client-seq make writes safe
to retry: applied once per (client, seq); a different command under a seq already applied, or
an older seq, gets 409. Membership, on the leader: POST /members with
{"id":4,"raft":"host:port","http":"host:port"}, DELETE /members/<id>, POST /transfer/<id>
(hand leadership to <id>). GET /metrics: the Prometheus text format (one group only).`;

/** A mistake on the command line; the message says which flag and why. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Parses `argv` (without node and the script); throws {@link UsageError}, or returns 'help' or 'version'. */
export function parseFlags(argv: string[], env: NodeJS.ProcessEnv = {}): ServerFlags | 'help' | 'version' {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        id: { type: 'string' },
        data: { type: 'string' },
        peers: { type: 'string' },
        http: { type: 'string' },
        secret: { type: 'string' },
        heartbeat: { type: 'string' },
        election: { type: 'string' },
        'snapshot-delta': { type: 'string' },
        fsync: { type: 'string' },
        'send-before-save': { type: 'string' },
        timeout: { type: 'string' },
        quiet: { type: 'boolean' },
        join: { type: 'boolean' },
        groups: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        'log-level': { type: 'string' },
        version: { type: 'boolean', short: 'v' },
      },
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (values.help) return 'help';
  if (values.version) return 'version';
  const str = (name: string): string | undefined => values[name] as string | undefined;
  const quiet = values.quiet === true;
  const logLevel = str('log-level') ?? (quiet ? 'error' : 'info');
  if (!isLogLevel(logLevel)) {
    throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(logLevel)}`);
  }
  const required = (name: string): string => {
    const v = str(name);
    if (v === undefined || v === '') throw new UsageError(`--${name} is required`);
    return v;
  };
  const id = integer('--id', required('id'), 1);
  const data = required('data');
  const peers = addressList('--peers', required('peers'));
  const http = addressList('--http', required('http'));
  if (!peers.has(id)) throw new UsageError(`--peers must list this replica (--id ${id})`);
  const ids = (m: Map<number, Address>): string => [...m.keys()].sort((a, b) => a - b).join(',');
  if (ids(peers) !== ids(http))
    throw new UsageError(`--peers and --http must list the same ids (got ${ids(peers)} and ${ids(http)})`);
  if (values.join === true && peers.size < 2)
    throw new UsageError('--join needs the current members in --peers and --http, besides this replica');
  const secret = str('secret') ?? env.TICKRAFT_SECRET;
  if (secret === undefined || secret === '') throw new UsageError('--secret (or env TICKRAFT_SECRET) is required');
  if (Buffer.byteLength(secret, 'utf8') < 16) throw new UsageError('--secret must be at least 16 bytes');
  const heartbeat = integer('--heartbeat', str('heartbeat') ?? '50', 1);
  const election = range('--election', str('election') ?? '150-300');
  if (election[0] <= heartbeat)
    throw new UsageError(`--election minimum (${election[0]}) must be greater than --heartbeat (${heartbeat})`);
  const snapshotDelta = integer('--snapshot-delta', str('snapshot-delta') ?? '1000', 0);
  const fsync = onOff('--fsync', str('fsync') ?? 'on');
  const sendBeforeSave = onOff('--send-before-save', str('send-before-save') ?? 'on');
  const timeout = integer('--timeout', str('timeout') ?? '5000', 1);
  const groups = integer('--groups', str('groups') ?? '1', 1);
  if (groups > 1 && values.join === true) throw new UsageError('--join is not supported with --groups > 1');
  return {
    id,
    data,
    peers,
    http,
    secret,
    heartbeat,
    election,
    snapshotDelta,
    fsync,
    sendBeforeSave,
    timeout,
    quiet,
    logLevel,
    join: values.join === true,
    groups,
  };
}

function onOff(flag: string, text: string): boolean {
  if (text !== 'on' && text !== 'off') throw new UsageError(`${flag} must be on or off, got ${JSON.stringify(text)}`);
  return text === 'on';
}

function integer(flag: string, text: string, min: number): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < min)
    throw new UsageError(`${flag} must be an integer >= ${min}, got ${JSON.stringify(text)}`);
  return n;
}

function range(flag: string, text: string): [number, number] {
  const m = /^(\d+)-(\d+)$/.exec(text);
  if (!m) throw new UsageError(`${flag} must look like 150-300, got ${JSON.stringify(text)}`);
  const lo = integer(flag, m[1]!, 1);
  const hi = integer(flag, m[2]!, 1);
  if (hi <= lo) throw new UsageError(`${flag}: the maximum must be greater than the minimum, got ${text}`);
  return [lo, hi];
}

/** Parses `1=127.0.0.1:7001,2=host:7002`; an IPv6 host goes in brackets: `3=[::1]:7003`. */
export function addressList(flag: string, text: string): Map<number, Address> {
  const out = new Map<number, Address>();
  for (const item of text.split(',')) {
    const m = /^(\d+)=(?:\[([^\]]+)\]|([^:[\]]+)):(\d+)$/.exec(item.trim());
    if (!m) throw new UsageError(`${flag}: expected id=host:port, got ${JSON.stringify(item)}`);
    const id = integer(flag, m[1]!, 1);
    const port = integer(`${flag} port`, m[4]!, 1);
    if (port > 65535) throw new UsageError(`${flag}: port ${port} is out of range`);
    if (out.has(id)) throw new UsageError(`${flag}: id ${id} is listed twice`);
    out.set(id, { host: m[2] ?? m[3]!, port });
  }
  return out;
}

/** The URL prefix of an HTTP address, e.g. `http://127.0.0.1:8001`. */
export function httpOrigin(a: Address): string {
  return `http://${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`;
}
