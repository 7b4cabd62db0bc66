// The engine of tickraft-kv with one group (the default): one Replica keeps its log in a
// FileStorage and talks to the other replicas through a TcpCluster.
//
// Growing the cluster: start the new replica with --join and the current members plus itself
// in --peers and --http, then POST {"id":4,"raft":"host:port","http":"host:port"} to /members
// on the leader. The leader first commits the new member's addresses as a log command, which
// every replica applies (each adds the address to its TcpCluster and HTTP map, so whoever leads
// next can reach the new member), then adds it (it catches up as a non-voter, then votes).
import { randomUUID } from 'node:crypto';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';

import { FileStorage, ProposalQueue, Replica, type Role, type Storage } from 'tickraft';
import { TcpCluster } from 'tickraft/tcp';
import { leaderOp, submitter, tcpEvents, type EngineContext, type KvEngine } from './engine.js';
import { httpOrigin } from './flags.js';
import { kvMetrics } from './metrics.js';
import {
  KV_NOOP,
  KvNotFound,
  KvStopping,
  KvStateMachine,
  type KvCommand,
  type KvResult,
  type KvSnapshot,
} from './state-machine.js';

/** One replica of one group: the engine of `tickraft-kv` without `--groups`. */
export function singleEngine(ctx: EngineContext): KvEngine {
  const { flags: f, logger, log, fail } = ctx;
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
    onEvent: tcpEvents(ctx, (peer) => metrics.dropped(peer)),
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
    leaderSendsBeforeSave: f.sendBeforeSave,
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
  const submit = submitter(proposals, f.timeout, (outcome, seconds) => metrics.proposal(outcome, seconds));

  const backend: KvEngine['backend'] = {
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
  };

  /** Logs role and leader changes: the story of the cluster as this replica sees it. */
  function watch(): void {
    // The replica's own lines, with more detail, come through the logger it was given.
    replica.on('role', ({ role, term }) => {
      if (role === 'leader') log(`leader of term ${term}`);
    });
    replica.on('leader', ({ leaderId, term }) => {
      const s = replica.status;
      if (s.role !== 'leader')
        log(`${s.role} in term ${term}, leader ${leaderId ?? 'unknown'} (applied ${s.lastApplied})`);
    });
    replica.on('snapshot', ({ kind, index }) => {
      if (kind === 'installed') log(`installed the leader's snapshot at index ${index}`);
    });
    // A snapshot from the leader that this version cannot read is refused (and sent again): say so.
    let refused = 0;
    const timer = setInterval(() => {
      const r = replica.metrics.snapshotsRefused;
      if (r > refused) fail(`refused ${r - refused} snapshot(s) from the leader that this version cannot read`);
      refused = r;
    }, 1000);
    timer.unref();
  }

  return {
    backend,
    // The first tick opens the data directory and loads what it holds.
    async open() {
      await replica.tick();
      role = replica.status.role;
    },
    async listen() {
      await cluster.listen();
      return cluster.port;
    },
    run() {
      const loop = replica.start();
      watch();
      return loop;
    },
    async stop() {
      await replica.stop().catch((error: unknown) => fail(`closing the storage: ${String(error)}`));
      await replica.runExclusive(() => proposals.rejectAll(new KvStopping('the server is shutting down')));
    },
    close: () => cluster.close(),
  };
}
