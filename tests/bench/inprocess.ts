/**
 * The `inprocess` mode and the scaling run: 3 replicas in one process, MemoryStorage, and a
 * real-time in-process Cluster written for the bench.
 *
 * Messages are handed over by reference (no copy, no serialization): the replica never relies on
 * a message being shared with its sender nor mutates one it received, so this is safe, and it
 * measures the Raft code rather than a codec. Delivery pushes onto the receiver's inbox and
 * wakes its `start()` loop through the Cluster's `registerWakeup` hook.
 */
import { MemoryStorage, Replica, type Cluster, type Message, type ReplicaId } from '../../src/index.js';
import {
  BenchMachine,
  ClosedLoop,
  NOOP,
  runClosedLoop,
  sleep,
  waitFor,
  type BenchSnap,
  type BenchTx,
  type Timing,
} from './workload.js';

type Msg = Message<BenchTx, BenchSnap>;

class Endpoint implements Cluster<BenchTx, BenchSnap> {
  inbox: Msg[] = [];
  wake: (() => void) | undefined;
  constructor(private readonly net: InProcessNetwork) {}
  sendMessage(to: ReplicaId, m: Msg): void {
    const e = this.net.endpoints.get(to);
    if (e === undefined) return;
    e.inbox.push(m);
    e.wake?.();
  }
  receiveMessages(): Msg[] {
    if (this.inbox.length === 0) return [];
    const r = this.inbox;
    this.inbox = [];
    return r;
  }
  halt(): boolean {
    return this.net.stopped;
  }
  registerLeader(): void {}
  registerWakeup(wake: () => void): void {
    this.wake = wake;
  }
}

export class InProcessNetwork {
  readonly endpoints = new Map<ReplicaId, Endpoint>();
  stopped = false;
  endpoint(id: ReplicaId): Endpoint {
    const e = new Endpoint(this);
    this.endpoints.set(id, e);
    return e;
  }
}

export interface InProcessCluster {
  replicas: Replica<BenchTx, BenchSnap>[];
  machines: BenchMachine[];
  leader: number;
  stop(): Promise<void>;
}

export async function startInProcess(snapshotDelta = 0): Promise<InProcessCluster> {
  const net = new InProcessNetwork();
  const ids = [1, 2, 3];
  const machines = ids.map(() => new BenchMachine());
  const replicas = ids.map(
    (id, i) =>
      new Replica<BenchTx, BenchSnap>({
        id,
        peerIds: ids.filter((p) => p !== id),
        cluster: net.endpoint(id),
        stateMachine: machines[i]!,
        noopTransition: NOOP,
        heartbeatTimeout: 50,
        electionTimeoutRange: [150, 300],
        snapshotDelta,
        storage: new MemoryStorage(),
      }),
  );
  const running = replicas.map((r) => r.start());
  let failed: unknown;
  for (const p of running)
    p.catch((e: unknown) => {
      failed ??= e;
    });
  const stop = async (): Promise<void> => {
    net.stopped = true;
    for (const r of replicas) r.wake();
    await Promise.allSettled(running);
    if (failed !== undefined) throw failed;
  };
  try {
    const leader = await waitFor('an in-process leader', () => {
      if (failed !== undefined) throw failed;
      const i = replicas.findIndex((r) => r.status.role === 'leader');
      return i >= 0 && replicas[i]!.status.commitIndex >= 1 ? i : undefined;
    });
    return { replicas, machines, leader, stop };
  } catch (e) {
    await stop().catch(() => undefined);
    throw e;
  }
}

/** Every replica applied exactly what the leader applied: same count, same sum of ids. Throws otherwise. */
export async function verifyAllApplied(
  what: string,
  machines: BenchMachine[],
  leader: number,
  timeoutMs = 10_000,
): Promise<void> {
  const l = machines[leader]!;
  try {
    await waitFor(
      `${what}: every replica to apply all ${l.applied} transitions`,
      () => (machines.every((m) => m.applied === l.applied && m.sum === l.sum) ? true : undefined),
      timeoutMs,
      2,
    );
  } catch {
    throw new Error(
      `BENCH FAILURE (${what}): replicas disagree on what they applied: ${machines.map((m, i) => `#${i + 1} applied ${m.applied} (sum ${m.sum})`).join(', ')}`,
    );
  }
}

export interface Figures {
  commitsPerSec: number;
  p50Us: number;
  p99Us: number;
}

/** One in-process run of `clients` closed-loop clients: warm up, measure, drain, verify. */
export async function runInProcess(clients: number, timing: Timing): Promise<Figures> {
  const c = await startInProcess();
  try {
    const replica = c.replicas[c.leader]!;
    const load = await runClosedLoop(c.machines[c.leader]!, () => replica.wake(), clients, timing);
    if (replica.status.role !== 'leader')
      throw new Error('bench: the in-process leader lost its leadership during the run');
    await verifyAllApplied(`inprocess c${clients}`, c.machines, c.leader);
    return load.result();
  } finally {
    await c.stop();
  }
}

/** One scaling run: a point per checkpoint, each over the same time window. */
export interface Scaling {
  /** The commit count at which each window started (the checkpoints). */
  entries: number[];
  /** The commit count at which each window ended. */
  windowEnd: number[];
  commitsPerSec: number[];
  /** CPU time of the whole process (user + system, 3 replicas) per entry committed in the window, µs. */
  cpuUsPerEntry: number[];
  /** RSS of the whole process (3 replicas) at the end of each window, MB. */
  rssMb: number[];
}

/**
 * Grows the log past the last checkpoint under `clients` closed-loop clients. At each checkpoint
 * X (a commit count) it measures a window of `windowMs` of wall time: entries committed, commits/s,
 * process CPU per entry, and RSS at the window's end. Equal time windows, so a window pays for
 * whatever the log costs at that size (compactions included) over the same span of time. With
 * `snapshotDelta` 0 nothing is compacted and the log holds every entry.
 */
export async function runScaling(
  checkpoints: number[],
  clients: number,
  snapshotDelta: number,
  windowMs: number,
): Promise<Scaling> {
  const c = await startInProcess(snapshotDelta);
  try {
    const machine = c.machines[c.leader]!;
    const replica = c.replicas[c.leader]!;
    const load = new ClosedLoop(machine, () => replica.wake(), 0);
    machine.load = load;
    const out: Scaling = { entries: [], windowEnd: [], commitsPerSec: [], cpuUsPerEntry: [], rssMb: [] };
    load.start(clients);
    const deadline = Date.now() + Math.max(90_000, checkpoints[checkpoints.length - 1]! / 5);
    for (const x of checkpoints) {
      while (load.total < x) {
        if (Date.now() > deadline) throw new Error(`bench: scaling did not reach ${x} entries in time`);
        await sleep(1);
      }
      const n0 = load.total;
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      await sleep(windowMs);
      const n1 = load.total;
      const cpu = process.cpuUsage(cpu0);
      const seconds = (performance.now() - t0) / 1000;
      out.entries.push(n0);
      out.windowEnd.push(n1);
      out.commitsPerSec.push(Math.round((n1 - n0) / seconds));
      out.cpuUsPerEntry.push(Math.round(((cpu.user + cpu.system) / Math.max(1, n1 - n0)) * 100) / 100);
      out.rssMb.push(Math.round(process.memoryUsage.rss() / 1e5) / 10);
    }
    await load.stop();
    await verifyAllApplied('scaling', c.machines, c.leader, 20_000);
    return out;
  } finally {
    await c.stop();
  }
}

export { sleep };
