// GET /metrics of tickraft-kv, in the Prometheus text format (prom-client). Gauges and
// counters are read from the replica's public status and metrics, and from the TcpCluster, at
// scrape time; the server feeds the rest (proposal outcomes, commit and fsync latency, leader
// changes, per-peer drops) as they happen. Node's default process metrics come along.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ReplicaMetrics, ReplicaStatus } from 'tickraft';
import type { TcpStats } from 'tickraft/tcp';

/** What the metrics read at scrape time. */
export interface KvMetricsSource {
  status(): ReplicaStatus;
  metrics(): Readonly<ReplicaMetrics>;
  tcp(): Readonly<TcpStats>;
  /** The other members, and whether each has an authenticated connection now. */
  peers(): { id: number; connected: boolean }[];
}

/** How a proposal ended, as the `outcome` label of `tickraft_proposals_total`. */
export type ProposalOutcome = 'applied' | 'refused' | 'not_leader' | 'conflict' | 'timeout' | 'stopped' | 'error';

/** The registry and the instruments the server updates itself. */
export interface KvMetrics {
  readonly registry: Registry;
  /** Counts a proposal's outcome and, when applied, its latency from propose() to applied. */
  proposal(outcome: ProposalOutcome, seconds?: number): void;
  /** Times one storage save (the fsync included when on). */
  save(seconds: number): void;
  /** Counts a leader change seen by this replica (`registerLeader`). */
  leaderChanged(): void;
  /** Counts a message the TcpCluster dropped, per peer. */
  dropped(peer: number | undefined): void;
}

/** Latency buckets in seconds, 0.5 ms to 10 s: a save is sub-ms without fsync, tens of ms on a slow disk. */
const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Creates the registry for one replica; every series carries `replica="<id>"`. */
export function kvMetrics(id: number, source: KvMetricsSource): KvMetrics {
  const registry = new Registry();
  registry.setDefaultLabels({ replica: String(id) });
  collectDefaultMetrics({ register: registry });
  const gauge = (name: string, help: string, read: (s: ReplicaStatus) => number): void => {
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read(source.status()));
      },
    });
  };
  gauge('tickraft_term', 'Current Raft term.', (s) => s.term);
  gauge('tickraft_commit_index', 'Highest log index known committed.', (s) => s.commitIndex);
  gauge('tickraft_applied_index', 'Highest log index applied to the state machine.', (s) => s.lastApplied);
  gauge('tickraft_last_log_index', 'Index of the last entry in the log.', (s) => s.lastLogIndex);
  gauge('tickraft_leader_id', 'The leader this replica knows of; 0 when none is known.', (s) => s.leaderId ?? 0);
  new Gauge({
    name: 'tickraft_role',
    help: '1 for the role this replica has now, 0 for the others.',
    labelNames: ['role'],
    registers: [registry],
    collect() {
      const role = source.status().role;
      for (const r of ['follower', 'candidate', 'leader']) this.set({ role: r }, r === role ? 1 : 0);
    },
  });
  // Counters kept by the replica and the cluster: copied at scrape time.
  const copied = (name: string, help: string, read: () => number): void => {
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        this.reset();
        this.inc(read());
      },
    });
  };
  const m = (k: keyof ReplicaMetrics) => () => source.metrics()[k];
  copied('tickraft_messages_in_total', 'Raft messages received, valid or not.', m('messagesIn'));
  copied('tickraft_messages_out_total', 'Raft messages handed to the cluster to send.', m('messagesOut'));
  copied('tickraft_messages_dropped_total', 'Raft messages dropped as malformed or hostile.', m('messagesDropped'));
  copied('tickraft_elections_started_total', 'Elections this replica started.', m('electionsStarted'));
  copied('tickraft_entries_appended_total', 'Entries appended to the log.', m('entriesAppended'));
  copied('tickraft_snapshots_created_total', 'Snapshots taken of the state machine.', m('snapshotsCreated'));
  copied('tickraft_snapshots_installed_total', 'Snapshots received from a leader and loaded.', m('snapshotsInstalled'));
  copied(
    'tickraft_snapshots_refused_total',
    'Snapshots from a leader this version could not load.',
    m('snapshotsRefused'),
  );
  const t = (k: keyof TcpStats) => () => source.tcp()[k];
  copied('tickraft_tcp_bytes_in_total', 'Bytes read from peer connections.', t('bytesIn'));
  copied('tickraft_tcp_bytes_out_total', 'Bytes written to peer connections.', t('bytesOut'));
  copied('tickraft_tcp_auth_failures_total', 'Peer connections refused (secret, TLS, identity).', t('authFailures'));
  copied('tickraft_tcp_bad_frames_total', 'Peer connections closed for a bad frame.', t('badFrames'));
  copied('tickraft_tcp_reconnects_total', 'Connections re-established with a peer.', t('reconnects'));
  new Gauge({
    name: 'tickraft_peer_connected',
    help: '1 while the peer has an authenticated connection.',
    labelNames: ['peer'],
    registers: [registry],
    collect() {
      this.reset();
      for (const p of source.peers()) this.set({ peer: String(p.id) }, p.connected ? 1 : 0);
    },
  });
  const drops = new Counter({
    name: 'tickraft_peer_messages_dropped_total',
    help: 'Messages the transport dropped, by peer (queue full, ...).',
    labelNames: ['peer'],
    registers: [registry],
  });
  const leaderChanges = new Counter({
    name: 'tickraft_leader_changes_total',
    help: 'Leader changes seen by this replica (a leader lost counts).',
    registers: [registry],
  });
  // Counted in a plain record per write and added to the counter when scraped: the counter's
  // label hashing and checks would otherwise run for every request.
  const outcomes: Partial<Record<ProposalOutcome, number>> = {};
  new Counter({
    name: 'tickraft_proposals_total',
    help: 'Writes proposed through this replica, by outcome.',
    labelNames: ['outcome'],
    registers: [registry],
    collect() {
      for (const [outcome, n] of Object.entries(outcomes) as [ProposalOutcome, number][]) {
        if (n > 0) this.inc({ outcome }, n);
        outcomes[outcome] = 0;
      }
    },
  });
  const commit = new Histogram({
    name: 'tickraft_commit_latency_seconds',
    help: 'From propose() to applied on this replica, for applied writes.',
    buckets: BUCKETS,
    registers: [registry],
  });
  const fsync = new Histogram({
    name: 'tickraft_storage_save_seconds',
    help: 'One storage save, its fsync included (--fsync on).',
    buckets: BUCKETS,
    registers: [registry],
  });
  return {
    registry,
    proposal(outcome, seconds) {
      outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
      if (seconds !== undefined) commit.observe(seconds);
    },
    save: (seconds) => fsync.observe(seconds),
    leaderChanged: () => leaderChanges.inc(),
    dropped: (peer) => drops.inc({ peer: peer === undefined ? 'unknown' : String(peer) }),
  };
}
