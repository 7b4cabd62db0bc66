/**
 * One bench replica as its own process (forked by the bench with an IPC channel): a Replica over
 * TcpCluster on 127.0.0.1 with MemoryStorage or FileStorage. The parent drives it over IPC; the
 * load runs inside this process (through the state machine), so no HTTP is measured.
 *
 * Also `scaling` mode: runs the scaling measurement alone in this process, so its RSS is its own;
 * `echo` (limits.ts) and `skeleton-follower` (skeleton.ts).
 */
import { FileStorage, MemoryStorage, Replica, type ReplicaId, type Storage } from '../../src/index.js';
import { TcpCluster } from '../../src/tcp.js';
import { runInProcess, runScaling } from './inprocess.js';
import { echoServerMain } from './limits.js';
import { skeletonFollowerMain } from './skeleton.js';
import {
  BenchMachine,
  NOOP,
  PAYLOAD,
  runClosedLoop,
  wallNow,
  type BenchSnap,
  type BenchTx,
  type Timing,
} from './workload.js';

export interface ServerConfig {
  id: number;
  ports: Record<number, number>;
  secret: string;
  storage: 'memory' | 'file';
  dir: string;
  heartbeat: number;
  election: [number, number];
  /** The opt-in of dissertation §10.2.1 (the bench's tcpFsyncSendBeforeSave rows); default off, as for users. */
  leaderSendsBeforeSave?: boolean;
}

/** What the `scaling` mode measures (see runScaling). */
export interface ScalingConfig {
  checkpoints: number[];
  clients: number;
  snapshotDelta: number;
  windowMs: number;
  warmupMs: number;
}

export type Request =
  | { rid: number; type: 'status' }
  | ({ rid: number; type: 'load'; clients: number } & Timing)
  | { rid: number; type: 'light'; on: boolean }
  | { rid: number; type: 'stop' };

const send = (m: unknown): void => {
  process.send?.(m);
};

// If the parent goes away, so do we.
process.on('disconnect', () => process.exit(0));

async function scalingMain(): Promise<void> {
  const { checkpoints, clients, snapshotDelta, windowMs, warmupMs } = JSON.parse(process.argv[3]!) as ScalingConfig;
  // Warm the JIT on a throwaway cluster first, so the first checkpoints measure the log, not the compiler.
  await runInProcess(clients, { jitWarmupMs: 0, warmupMs: warmupMs / 2, measureMs: warmupMs / 2 });
  const result = await runScaling(checkpoints, clients, snapshotDelta, windowMs);
  send({ type: 'scaling', result });
  process.disconnect?.();
}

async function replicaMain(): Promise<void> {
  const cfg = JSON.parse(process.argv[2]!) as ServerConfig;
  const machine = new BenchMachine();
  const peers = Object.fromEntries(
    Object.entries(cfg.ports)
      .filter(([id]) => Number(id) !== cfg.id)
      .map(([id, port]) => [id, { host: '127.0.0.1', port }]),
  );
  const cluster = new TcpCluster<BenchTx, BenchSnap>({
    id: cfg.id,
    listen: { host: '127.0.0.1', port: cfg.ports[cfg.id]! },
    peers,
    secret: cfg.secret,
  });
  const storage: Storage<BenchTx, BenchSnap> =
    cfg.storage === 'file' ? new FileStorage<BenchTx, BenchSnap>(cfg.dir, { fsync: true }) : new MemoryStorage();
  const replica = new Replica<BenchTx, BenchSnap>({
    id: cfg.id,
    peerIds: Object.keys(cfg.ports)
      .map(Number)
      .filter((id) => id !== cfg.id),
    cluster,
    stateMachine: machine,
    noopTransition: NOOP,
    heartbeatTimeout: cfg.heartbeat,
    electionTimeoutRange: cfg.election,
    storage,
    leaderSendsBeforeSave: cfg.leaderSendsBeforeSave ?? false,
  });

  // Failover's light load: while this replica leads, one proposal in flight; the first one
  // applied in a leadership is reported with its wall-clock time.
  let light = false;
  let lightId = cfg.id * 1e12 + Math.floor(wallNow() % 1e9) * 1000;
  let lightInflight: number | undefined;
  let reportedTerm = -1;
  const submitLight = (): void => {
    if (!light || lightInflight !== undefined || replica.status.role !== 'leader') return;
    lightInflight = ++lightId;
    machine.pending.push({ id: lightInflight, p: PAYLOAD });
    replica.wake();
  };
  machine.onState = (id, state) => {
    if (id !== lightInflight) return;
    if (state.status === 'applied' || state.status === 'abandoned') lightInflight = undefined;
    if (state.status === 'applied') {
      const term = replica.status.term;
      if (term !== reportedTerm) {
        reportedTerm = term;
        send({ type: 'firstCommit', id: cfg.id, term, at: wallNow() });
      }
    }
    setImmediate(submitLight);
  };
  const lightTimer = setInterval(submitLight, 5);

  await cluster.listen();
  const running = replica.start();
  running.catch((e: unknown) => {
    process.stderr.write(`bench replica ${cfg.id}: ${String(e)}\n`);
    process.exit(1);
  });

  const status = () => ({ ...replica.status, applied: machine.applied, sum: machine.sum });
  process.on('message', (raw) => {
    const m = raw as Request;
    void (async () => {
      try {
        switch (m.type) {
          case 'status':
            return send({ rid: m.rid, ...status() });
          case 'light':
            light = m.on;
            return send({ rid: m.rid });
          case 'load': {
            if (replica.status.role !== 'leader') throw new Error(`replica ${cfg.id} is not the leader`);
            const load = await runClosedLoop(machine, () => replica.wake(), m.clients, m);
            if (replica.status.role !== 'leader')
              throw new Error(`replica ${cfg.id} lost its leadership during the run`);
            return send({ rid: m.rid, ...load.result(), total: load.total });
          }
          case 'stop':
            clearInterval(lightTimer);
            await cluster.close();
            await running.catch(() => undefined);
            if (storage instanceof FileStorage) await storage.close();
            send({ rid: m.rid });
            process.disconnect?.();
            return;
        }
      } catch (e) {
        send({ rid: m.rid, error: String(e) });
      }
    })();
  });
  send({ type: 'ready', id: cfg.id as ReplicaId });
}

if (process.argv[2] === 'scaling') await scalingMain();
else if (process.argv[2] === 'echo') await echoServerMain();
else if (process.argv[2] === 'skeleton-follower') skeletonFollowerMain(process.argv[3] === '1', process.argv[4]!);
else await replicaMain();
