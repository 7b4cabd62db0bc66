// The engine of `tickraft-kv --groups N` (N > 1): the keys are split over N Raft groups
// (shards.ts: group FNV-1a(key) mod N, each on 3 processes), and this process runs its member of
// each of its groups in one RaftHost, over one TcpHostNetwork (one connection per pair of
// processes) and one SharedLog in --data (one write and one fdatasync per tick for all groups).
// Each group has its own KvStateMachine and ProposalQueue. A request for a key is served here
// when this process leads the key's group; otherwise it is answered 307 to that group's leader,
// as the one-group server answers on a follower. Leaders are spread by transfers
// (host.balanceLeaders(), every BALANCE_INTERVAL ms), also after a process comes back.
import { ProposalQueue, type Replica, type Role } from 'tickraft';
import { SharedLog } from 'tickraft/file';
import { RaftHost } from 'tickraft/multi';
import { TcpHostNetwork } from 'tickraft/tcp';
import { leaderOp, submitter, tcpEvents, type EngineContext, type KvEngine } from './engine.js';
import { httpOrigin } from './flags.js';
import { groupOf, membersOf } from './shards.js';
import {
  KV_NOOP,
  KvInvalid,
  KvNotLeader,
  KvStopping,
  KvStateMachine,
  type KvCommand,
  type KvResult,
  type KvSnapshot,
} from './state-machine.js';

/** Ms between two calls of `host.balanceLeaders()`. */
export const BALANCE_INTERVAL = 2000;

/** This process's member of one group. */
interface Shard {
  readonly kv: KvStateMachine;
  readonly proposals: ProposalQueue<KvCommand, KvSnapshot, KvResult>;
  readonly replica: Replica<KvCommand, KvSnapshot>;
  readonly submit: (command: KvCommand) => Promise<KvResult>;
  /** Kept by the replica's events, as in single.ts: "leader" may lag a tick, never "not leader". */
  role: Role;
}

/** What `GET /status` answers with --groups. */
export interface ShardedStatus {
  id: number;
  pid: number;
  groups: number;
  /** The groups this process hosts. */
  hosted: number;
  /** The groups this process leads now. */
  leading: number;
  /** Group g's leader as this process knows it, at position g: an id, `-` if unknown, `.` if not hosted here. */
  leaders: string;
  /** How many groups each process leads, as far as this process sees (from the groups it hosts). */
  leadersPerProcess: Record<string, number>;
  /** Groups hosted here and quiescent (idle: not ticked, no heartbeats). */
  quiescent: number;
  host: unknown;
  log: unknown;
  tcp: unknown;
  connectedPeers: number[];
  httpAddresses: Record<string, string>;
}

/** What `GET /debug/dump` answers with --groups: each hosted group's local state (not linearizable). */
export interface ShardedDump {
  id: number;
  groups: Record<string, { appliedIndex: number; lastApplied: number; data: Record<string, string> }>;
}

/** A RaftHost of the groups placed on this process: the engine of `tickraft-kv --groups N`. */
export function shardedEngine(ctx: EngineContext): KvEngine {
  const { flags: f, logger, log } = ctx;
  const ids = [...f.peers.keys()];
  const network = new TcpHostNetwork<KvCommand, KvSnapshot>({
    id: f.id,
    listen: f.peers.get(f.id)!,
    peers: Object.fromEntries([...f.peers].filter(([id]) => id !== f.id)),
    secret: f.secret,
    onEvent: tcpEvents(ctx),
  });
  // One envelope per peer every heartbeat at least: the process-level failure detector, which
  // wakes the quiescent groups of a process that went silent (after 3 heartbeats).
  const host = new RaftHost<KvCommand, KvSnapshot>({ id: f.id, network, livenessInterval: f.heartbeat });
  const wal = new SharedLog<KvCommand, KvSnapshot>(f.data, {
    fsync: f.fsync,
    onWarning: (m) => log(`storage: ${m}`),
  });
  const shards = new Map<number, Shard>();
  let stopping = false;
  let balancer: ReturnType<typeof setInterval> | undefined;

  /** Creates this process's member of each of its groups, on the log just opened. */
  function createShards(): void {
    const stray = wal.groupIds().filter((g) => g >= f.groups || !membersOf(g, ids).includes(f.id));
    if (stray.length > 0) {
      throw new Error(
        `the log holds group(s) ${stray.join(', ')}, which --groups ${f.groups} does not place on this ` +
          'process: the keys are split by --groups, which must not change for the life of the data',
      );
    }
    for (let g = 0; g < f.groups; g++) {
      const members = membersOf(g, ids);
      if (!members.includes(f.id)) continue;
      const kv = new KvStateMachine();
      const proposals = new ProposalQueue<KvCommand, KvSnapshot, KvResult>(kv);
      const replica = host.createGroup(g, {
        members,
        stateMachine: proposals,
        noopTransition: KV_NOOP,
        heartbeatTimeout: f.heartbeat,
        electionTimeoutRange: f.election,
        snapshotDelta: f.snapshotDelta,
        leaderSendsBeforeSave: f.sendBeforeSave,
        storage: wal.group(g),
        logger: logger.child({ component: 'raft', group: g }),
      });
      proposals.attach(replica);
      const shard: Shard = { kv, proposals, replica, submit: submitter(proposals, f.timeout), role: 'follower' };
      replica.on('role', (e) => {
        shard.role = e.role;
      });
      // A group that fails (its storage: the shared log has failed for every group) ends the process.
      replica.on('stopped', ({ error }) => {
        if (!stopping) void ctx.shutdown(1, `group ${g} stopped: ${(error as Error)?.message ?? String(error)}`);
      });
      shards.set(g, shard);
    }
  }

  const shardOf = (key: string): Shard | undefined => shards.get(groupOf(key, f.groups));
  const notHere = (): Promise<never> => Promise.reject(new KvNotLeader("this process does not host the key's group"));
  const perGroupOnly = (): Promise<never> =>
    Promise.reject(new KvInvalid('membership changes and transfers are not supported with --groups > 1'));

  const backend: KvEngine['backend'] = {
    // Without a key (membership, transfer): answered below, 422.
    isLeader: (key) => {
      if (key === undefined) return true;
      const s = shardOf(key);
      return s !== undefined && (s.role === 'leader' || s.replica.status.role === 'leader');
    },
    leaderOrigin: (leaderId, key) => {
      const g = key === undefined ? undefined : groupOf(key, f.groups);
      const s = g === undefined ? undefined : shards.get(g);
      // A process that does not host the group sends the client to one that does: it knows the leader.
      const known = s ? s.replica.status.leaderId : g === undefined ? undefined : membersOf(g, ids)[0];
      const leader = leaderId ?? known;
      const address = leader === undefined || leader === f.id ? undefined : f.http.get(leader);
      return address && httpOrigin(address);
    },
    submit: (command) => {
      const s = 'key' in command ? shardOf(command.key) : undefined;
      return s ? s.submit(command) : notHere();
    },
    // As in single.ts: reads that arrive before the group's next tick share its heartbeat round.
    read: (key) => {
      const s = shardOf(key);
      return s ? leaderOp(s.replica.readIndex()).then(() => s.kv.data.get(key)) : notHere();
    },
    addMember: perGroupOnly,
    removeMember: perGroupOnly,
    transferLeadership: perGroupOnly,
    status: (): ShardedStatus => {
      const leaders: string[] = [];
      const perProcess: Record<string, number> = Object.fromEntries(ids.map((id) => [id, 0]));
      let leading = 0;
      let quiescent = 0;
      for (let g = 0; g < f.groups; g++) {
        const s = shards.get(g)?.replica.status;
        if (!s) leaders.push('.');
        else if (s.leaderId === undefined) leaders.push('-');
        else {
          leaders.push(String(s.leaderId));
          perProcess[s.leaderId] = (perProcess[s.leaderId] ?? 0) + 1;
          if (s.role === 'leader') leading++;
        }
        if (s && host.isQuiescent(g)) quiescent++;
      }
      return {
        id: f.id,
        pid: process.pid,
        groups: f.groups,
        hosted: shards.size,
        leading,
        leaders: leaders.join(','),
        leadersPerProcess: perProcess,
        quiescent,
        host: host.stats,
        log: wal.stats,
        tcp: network.tcp.stats,
        connectedPeers: network.tcp.connectedPeers,
        httpAddresses: Object.fromEntries([...f.http].map(([id, a]) => [id, httpOrigin(a)])),
      };
    },
    dump: async (): Promise<ShardedDump> => {
      const groups = await Promise.all(
        [...shards].map(([g, s]) =>
          s.replica.runExclusive(() => [
            g,
            {
              appliedIndex: s.kv.appliedIndex,
              lastApplied: s.replica.status.lastApplied,
              data: Object.fromEntries(s.kv.data),
            },
          ]),
        ),
      );
      return { id: f.id, groups: Object.fromEntries(groups) };
    },
  };

  /** Spreads the leaders; logs what moved and how many groups this process leads when that changes. */
  let led = -1;
  function balance(): void {
    const moved = host.balanceLeaders();
    if (moved.length > 0) log(`handing leadership of group(s) ${moved.join(', ')} to less loaded processes`);
    let n = 0;
    for (const s of shards.values()) if (s.role === 'leader') n++;
    if (n !== led) log(`leading ${n} of the ${shards.size} groups hosted here`);
    led = n;
  }

  return {
    backend,
    async open() {
      await wal.open();
      createShards();
    },
    async listen() {
      await network.tcp.listen();
      return network.tcp.port;
    },
    run() {
      balancer = setInterval(balance, BALANCE_INTERVAL);
      balancer.unref();
      return host.start();
    },
    async stop() {
      stopping = true;
      clearInterval(balancer);
      await host.stop().catch((error: unknown) => ctx.fail(`closing the storage: ${String(error)}`));
      const stopped = new KvStopping('the server is shutting down');
      await Promise.all([...shards.values()].map((s) => s.replica.runExclusive(() => s.proposals.rejectAll(stopped))));
    },
    async close() {
      await network.tcp.close();
      await wal.close();
    },
  };
}
