#!/usr/bin/env node
// tickraft-kv: one replica of a replicated key-value store, as its own process. A Replica keeps
// its log in a FileStorage, talks to the other replicas through a TcpCluster, and serves an
// HTTP API (see http.ts). Writes go through the log; reads use the read index (no log write);
// both are linearizable.
//
//   tickraft-kv --id 1 --data ./data/1 --secret 'a long shared secret' \
//     --peers 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003 \
//     --http 1=127.0.0.1:8001,2=127.0.0.1:8002,3=127.0.0.1:8003
//
// Growing the cluster: start the new replica with --join and the current members plus itself
// in --peers and --http, then POST {"id":4,"raft":"host:port","http":"host:port"} to /members
// on the leader. The leader first commits the new member's addresses as a log command, which
// every replica applies (each adds the address to its TcpCluster and HTTP map, so whoever leads
// next can reach the new member), then adds it (it catches up as a non-voter, then votes).
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

import {
  CatchUpTimeoutError,
  ConflictError,
  FileStorage,
  InvalidArgumentError,
  MembershipChangeInProgressError,
  NotLeaderError,
  ProposalQueue,
  ProposalTimeoutError,
  Replica,
  ReplicaStoppedError,
  TransferInProgressError,
  TransferTimeoutError,
  type Role,
  type Storage,
} from 'tickraft';
import { TcpCluster } from 'tickraft/tcp';
import { USAGE, UsageError, httpOrigin, parseFlags, type ServerFlags } from './flags.js';
import { kvRequestListener } from './http.js';
import { kvLogger } from './log.js';
import { kvMetrics, type ProposalOutcome } from './metrics.js';
import { statusCommand } from './status.js';
import {
  KV_NOOP,
  KvConflict,
  KvInvalid,
  KvNotFound,
  KvNotLeader,
  KvStopping,
  KvTimeout,
  KvStateMachine,
  type KvCommand,
  type KvResult,
  type KvSnapshot,
} from './state-machine.js';

/** The version in the package.json of the tickraft package this file belongs to. */
function version(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    try {
      const p = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (p.name === 'tickraft') return p.version ?? 'unknown';
    } catch {
      /* not here: look further up */
    }
    if (dirname(dir) === dir) return 'unknown';
  }
}

let flags: ServerFlags | 'help' | 'version';
try {
  if (process.argv[2] === 'status') process.exit(await statusCommand(process.argv.slice(3)));
  flags = parseFlags(process.argv.slice(2), process.env);
} catch (error) {
  if (!(error instanceof UsageError)) throw error;
  process.stderr.write(`tickraft-kv: ${error.message}\n\n${USAGE}\n`);
  process.exit(2);
}
if (flags === 'help' || flags === 'version') {
  process.stdout.write(flags === 'help' ? `${USAGE}\n` : `tickraft-kv ${version()}\n`);
  process.exit(0);
}
const f = flags;
const logger = kvLogger(f.id, f.logLevel);
const log = (what: string): void => logger.info(what);
const fail = (what: string): void => logger.error(what);
/** A fatal startup error: one line on stderr (and in the log), then the exit code. */
const fatal = (what: string): void => {
  logger.fatal(what);
  process.stderr.write(`[kv ${f.id}] ${new Date().toISOString()} ERROR ${what}\n`);
};

const kv = new KvStateMachine();
// Proposals go through tickraft's ProposalQueue: each resolves with what kv.applyTransition
// returned for its own entry, or rejects with a typed error.
const proposals = new ProposalQueue<KvCommand, KvSnapshot, KvResult>(kv);
const storage = new FileStorage<KvCommand, KvSnapshot>(f.data, {
  fsync: f.fsync,
  onWarning: (m) => log(`storage: ${m}`),
});
// What can hold up the replica's tick, shown in GET /status: the longest save, and the longest
// time the event loop was blocked (encoding, decoding, applying), in ms.
const loopDelay = monitorEventLoopDelay({ resolution: 10 });
loopDelay.enable();
let longestSaveMs = 0;
const timedStorage: Storage<KvCommand, KvSnapshot> = {
  load: () => storage.load(),
  async save(batch) {
    const start = performance.now();
    await storage.save(batch);
    const ms = performance.now() - start;
    longestSaveMs = Math.max(longestSaveMs, ms);
    metrics.save(ms / 1000);
  },
};
const peers = Object.fromEntries([...f.peers].filter(([id]) => id !== f.id));
const cluster = new TcpCluster<KvCommand, KvSnapshot>({
  id: f.id,
  listen: f.peers.get(f.id)!,
  peers,
  secret: f.secret,
  onEvent: (e) => {
    if (e.type === 'dropped') metrics.dropped(e.peer);
    else if (e.type === 'connected' || e.type === 'disconnected') log(`raft peer ${e.peer} ${e.type}`);
    else if (e.type === 'authFailure') fail(`raft connection from ${e.remote} refused: ${e.reason}`);
    else if (e.type === 'identityConflict' && e.outbound === true) {
      // Another live process holds this id: running on would make two replicas with one identity.
      fail(`another process is running as replica ${f.id} (${e.reason}); exiting`);
      void shutdown(1, 'replica id in use by another process');
    } else if (e.type === 'identityConflict') {
      fail(`refused a second process claiming replica ${e.peer} from ${e.remote}: ${e.reason}`);
    }
  },
});
const replica = new Replica<KvCommand, KvSnapshot>({
  id: f.id,
  peerIds: [...f.peers.keys()].filter((id) => id !== f.id),
  cluster,
  stateMachine: proposals,
  noopTransition: KV_NOOP,
  heartbeatTimeout: f.heartbeat,
  electionTimeoutRange: f.election,
  snapshotDelta: f.snapshotDelta,
  join: f.join,
  storage: timedStorage,
  // The replica's own lines (elections, membership, snapshots, catch-up progress, dropped messages).
  logger: logger.child({ component: 'raft' }),
});
// A member's addresses, committed through the log: every replica learns where to reach it.
kv.onMemberAddress = (member, a) => {
  if (member !== f.id) cluster.addPeer(member, a.raft);
  f.http.set(member, a.http);
};

proposals.attach(replica);
const metrics = kvMetrics(f.id, {
  status: () => replica.status,
  metrics: () => replica.metrics,
  tcp: () => cluster.stats,
  peers: () =>
    [...cluster.peerAddresses.keys()]
      .filter((id) => !cluster.retiredPeers.includes(id))
      .map((id) => ({ id, connected: cluster.connectedPeers.includes(id) })),
});
// Every change of the known leader, losing one included, from the replica's own event.
replica.on('leader', () => metrics.leaderChanged());
// This replica's role: read once the first tick has loaded the state, then kept by the events.
let role: Role = 'follower';
replica.on('role', (e) => {
  role = e.role;
});

const proposeOptions = { timeoutMs: f.timeout };
/**
 * Proposes a command and waits until it is applied here (at most --timeout ms); counted and timed.
 * One promise chain per write: this runs for every request.
 */
function submit(command: KvCommand): Promise<KvResult> {
  const start = performance.now();
  return proposals.propose(command, proposeOptions).then(
    (result) => {
      metrics.proposal(result.ok ? 'applied' : 'refused', (performance.now() - start) / 1000);
      return result;
    },
    (error: unknown) => {
      metrics.proposal(outcomeOf(error));
      throw refusal(error);
    },
  );
}

function outcomeOf(error: unknown): ProposalOutcome {
  if (error instanceof NotLeaderError) return 'not_leader';
  if (error instanceof ConflictError) return 'conflict';
  if (error instanceof ProposalTimeoutError) return 'timeout';
  if (error instanceof KvStopping || error instanceof ReplicaStoppedError) return 'stopped';
  return 'error';
}

/** Maps the replica's refusals, told apart by class, to what the HTTP layer understands. */
function refusal(error: unknown): unknown {
  if (error instanceof NotLeaderError) return new KvNotLeader(error.message, error.leaderId);
  // A conflict settles the latest attempt under the id, which need not be the entry removed: unknown.
  if (error instanceof ConflictError) return new KvNotLeader(error.message, undefined, false);
  if (error instanceof ProposalTimeoutError) return new KvTimeout(error.message);
  if (error instanceof InvalidArgumentError) return new KvInvalid(error.message);
  if (error instanceof ReplicaStoppedError || error instanceof KvStopping) {
    return new KvStopping('the server is shutting down');
  }
  const busy = error instanceof MembershipChangeInProgressError || error instanceof TransferInProgressError;
  if (busy) return new KvConflict(error.message);
  const late = error instanceof CatchUpTimeoutError || error instanceof TransferTimeoutError;
  if (late) return new KvTimeout(error.message);
  return error;
}

/** Waits for a leader-only operation of the replica, its refusals mapped by {@link refusal}. */
function leaderOp<R>(p: Promise<R>): Promise<R> {
  return p.catch((error: unknown) => {
    throw refusal(error);
  });
}

const http = createServer(
  { keepAliveTimeout: 10_000 },
  kvRequestListener({
    id: f.id,
    timeout: f.timeout,
    isStopping: () => stopping !== undefined,
    // Asked on every request. On the leader, the role the events report answers without
    // `replica.status` (which builds the whole status, each follower's progress included). It
    // can lag a tick behind: "leader" a tick too long is safe, since Raft itself refuses a
    // proposal or a read on a replica that no longer leads (the answer is the same 307/503);
    // "not leader" is checked live, so a replica that /status shows leading never refuses.
    isLeader: () => role === 'leader' || replica.status.role === 'leader',
    leaderOrigin: (leaderId) => {
      const leader = leaderId ?? replica.status.leaderId;
      const address = leader === undefined || leader === f.id ? undefined : f.http.get(leader);
      return address && httpOrigin(address);
    },
    submit,
    // Every read that arrives before the replica's next tick shares that tick's heartbeat round
    // (readIndex() batches them). The map is read without runExclusive: KvStateMachine is
    // synchronous, so no application can be half done when this runs, and a lock per read
    // would cost more than the read.
    read: (key) => leaderOp(replica.readIndex()).then(() => kv.data.get(key)),
    async addMember(id, addresses) {
      const { raft, http: web } = addresses;
      log(`adding member ${id} (raft ${raft.host}:${raft.port}, http ${httpOrigin(web)})`);
      await submit({ id: `member-address:${id}:${randomUUID()}`, op: 'member-address', member: id, raft, http: web });
      await leaderOp(replica.addMember(id));
      log(`member ${id} added`);
    },
    async removeMember(id) {
      // Removing a non-member would succeed at once, doing nothing: say so instead.
      const members = cluster.membership;
      if (members !== undefined && !members.includes(id)) throw new KvNotFound(`replica ${id} is not a member`);
      log(`removing member ${id}`);
      await leaderOp(replica.removeMember(id));
      log(`member ${id} removed`);
    },
    async transferLeadership(id) {
      log(`handing leadership to ${id}`);
      await leaderOp(replica.transferLeadership(id));
    },
    status: () => {
      const status = replica.status;
      const leader = status.leaderId === undefined ? undefined : f.http.get(status.leaderId);
      return {
        status,
        metrics: replica.metrics,
        leader: status.leaderId === undefined ? null : { id: status.leaderId, http: leader && httpOrigin(leader) },
        membership: cluster.membership ?? null,
        tcp: cluster.stats,
        connectedPeers: cluster.connectedPeers,
        retiredPeers: cluster.retiredPeers,
        peers: Object.fromEntries([...cluster.peerAddresses].map(([id, a]) => [id, `${a.host}:${a.port}`])),
        pid: process.pid,
        longest: { saveMs: Math.round(longestSaveMs), eventLoopBlockMs: Math.round(loopDelay.max / 1e6) },
        httpAddresses: Object.fromEntries([...f.http].map(([id, a]) => [id, httpOrigin(a)])),
      };
    },
    metrics: async () => ({ contentType: metrics.registry.contentType, body: await metrics.registry.metrics() }),
    dump: () =>
      replica.runExclusive(() => ({
        id: f.id,
        appliedIndex: kv.appliedIndex,
        lastApplied: replica.status.lastApplied,
        snapshotsInstalled: replica.metrics.snapshotsInstalled,
        data: Object.fromEntries(kv.data),
      })),
  }),
);

let loop: Promise<void> = Promise.resolve();
let stopping: Promise<void> | undefined;
/**
 * Drains and stops: new requests are answered 503; the replica stops (its tick in progress
 * finishes, pending reads and membership changes reject, its storage closes); writes still
 * waiting are answered 503 (they may yet commit: a retry with the same client and seq is safe);
 * then the TcpCluster closes, and the process exits once the answers are out.
 */
function shutdown(code: number, why: string): Promise<void> {
  stopping ??= (async () => {
    log(`shutting down: ${why}`);
    const force = setTimeout(() => {
      fail('shutdown took over 5 s; exiting');
      process.exit(code || 1);
    }, 5000);
    force.unref();
    http.close();
    http.closeIdleConnections();
    await replica.stop().catch((error: unknown) => fail(`closing the storage: ${String(error)}`));
    await replica.runExclusive(() => proposals.rejectAll(new KvStopping('the server is shutting down')));
    await loop.catch(() => undefined);
    await cluster.close();
    // Let the 503s just written reach their clients before the connections go.
    await new Promise((resolve) => setImmediate(resolve));
    http.closeAllConnections();
    log('stopped');
    process.exit(code);
  })();
  return stopping;
}
process.on('SIGTERM', () => void shutdown(0, 'SIGTERM'));
process.on('SIGINT', () => void shutdown(0, 'SIGINT'));

// The first tick opens the data directory and loads what it holds: a directory that cannot be
// used fails here, in one line, before any port is taken.
try {
  await replica.tick();
} catch (error) {
  if (!stopping) {
    fatal(`cannot use --data ${f.data}: ${(error as Error)?.message ?? String(error)}`);
    await cluster.close();
    process.exit(1);
  }
}
if (stopping) await stopping; // a signal came during startup: the shutdown exits the process
role = replica.status.role;

// Which flag named the address that cannot be used: said in the one line, with the address.
let listening = `--peers ${f.id}=${f.peers.get(f.id)!.host}:${f.peers.get(f.id)!.port} (raft)`;
try {
  await cluster.listen();
  const a = f.http.get(f.id)!;
  listening = `--http ${f.id}=${a.host}:${a.port}`;
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(a.port, a.host, () => {
      http.off('error', reject);
      resolve();
    });
  });
} catch (error) {
  const code = (error as NodeJS.ErrnoException).code;
  const why = code === 'EADDRINUSE' ? 'the port is in use' : (error as Error).message;
  fatal(`cannot listen on ${listening}: ${why}`);
  await cluster.close();
  process.exit(1);
}
log(`raft on ${f.peers.get(f.id)!.host}:${cluster.port}, HTTP on ${httpOrigin(f.http.get(f.id)!)}, data in ${f.data}`);

loop = replica.start();
loop.then(
  () => {
    if (!stopping) void shutdown(1, 'the replica stopped');
  },
  (error: unknown) => {
    fail(`the replica failed: ${(error as Error)?.stack ?? String(error)}`);
    void shutdown(1, 'replica failure');
  },
);

// Log role and leader changes: the story of the cluster as this replica sees it (the replica's
// own lines, with more detail, come through the logger it was given).
replica.on('role', ({ role, term }) => {
  if (role === 'leader') log(`leader of term ${term}`);
});
replica.on('leader', ({ leaderId, term }) => {
  const s = replica.status;
  if (s.role !== 'leader') log(`${s.role} in term ${term}, leader ${leaderId ?? 'unknown'} (applied ${s.lastApplied})`);
});
replica.on('snapshot', ({ kind, index }) => {
  if (kind === 'installed') log(`installed the leader's snapshot at index ${index}`);
});
// A snapshot from the leader that this version cannot read is refused (and sent again): say so.
let refused = 0;
const watch = setInterval(() => {
  const r = replica.metrics.snapshotsRefused;
  if (r > refused) fail(`refused ${r - refused} snapshot(s) from the leader that this version cannot read`);
  refused = r;
}, 1000);
watch.unref();
