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
import { BenchMachine, ClosedLoop, NOOP, sleep, waitFor, type BenchSnap, type BenchTx } from './workload.js';

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
  halt(): boolean { return this.net.stopped; }
  registerLeader(): void {}
  registerWakeup(wake: () => void): void { this.wake = wake; }
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
  const replicas = ids.map((id, i) => new Replica<BenchTx, BenchSnap>({
    id, peerIds: ids.filter((p) => p !== id), cluster: net.endpoint(id), stateMachine: machines[i]!, noopTransition: NOOP,
    heartbeatTimeout: 50, electionTimeoutRange: [150, 300], snapshotDelta, storage: new MemoryStorage(),
  }));
  const running = replicas.map((r) => r.start());
  let failed: unknown;
  for (const p of running) p.catch((e: unknown) => { failed ??= e; });
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
export async function verifyAllApplied(what: string, machines: BenchMachine[], leader: number, timeoutMs = 10_000): Promise<void> {
  const l = machines[leader]!;
  try {
    await waitFor(`${what}: every replica to apply all ${l.applied} transitions`, () => (machines.every((m) => m.applied === l.applied && m.sum === l.sum) ? true : undefined), timeoutMs, 2);
  } catch {
    throw new Error(`BENCH FAILURE (${what}): replicas disagree on what they applied: ${machines.map((m, i) => `#${i + 1} applied ${m.applied} (sum ${m.sum})`).join(', ')}`);
  }
}

export interface Figures { commitsPerSec: number; p50Us: number; p99Us: number }

/** One in-process run of `clients` closed-loop clients: warm up, measure, drain, verify. */
export async function runInProcess(clients: number, warmupMs: number, measureMs: number): Promise<Figures> {
  const c = await startInProcess();
  try {
    const machine = c.machines[c.leader]!;
    const replica = c.replicas[c.leader]!;
    const load = new ClosedLoop(machine, () => replica.wake(), 0);
    machine.load = load;
    load.start(clients);
    await sleep(warmupMs);
    load.beginMeasure();
    await sleep(measureMs);
    load.endMeasure();
    await load.stop();
    if (replica.status.role !== 'leader') throw new Error('bench: the in-process leader lost its leadership during the run');
    await verifyAllApplied(`inprocess c${clients}`, c.machines, c.leader);
    return load.result();
  } finally {
    await c.stop();
  }
}

export interface Scaling { entries: number[]; commitsPerSec: number[]; rssMb: number[] }

/**
 * Grows the log to the last checkpoint with snapshotDelta 10,000 under `clients` closed-loop
 * clients. The rate at checkpoint X is measured over the entries from X/2 to X; RSS (the whole
 * process: 3 replicas) is read at X.
 */
export async function runScaling(checkpoints: number[], clients: number): Promise<Scaling> {
  const c = await startInProcess(10_000);
  try {
    const machine = c.machines[c.leader]!;
    const replica = c.replicas[c.leader]!;
    const load = new ClosedLoop(machine, () => replica.wake(), 0);
    machine.load = load;
    // Each point's rate is measured over the same window, the WINDOW entries after it: one
    // snapshotDelta's worth, so every window pays for exactly one compaction and they compare.
    const WINDOW = 10_000;
    const marks = new Map<number, number>();
    for (const x of checkpoints) { marks.set(x, 0); marks.set(x + WINDOW, 0); }
    const rss = new Map<number, number>();
    const last = checkpoints[checkpoints.length - 1]! + WINDOW;
    let done: () => void = () => undefined;
    const finished = new Promise<void>((r) => { done = r; });
    load.onCommit = (n) => {
      if (!marks.has(n)) return;
      marks.set(n, performance.now());
      if (checkpoints.includes(n)) rss.set(n, process.memoryUsage.rss());
      if (n === last) done();
    };
    load.start(clients);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`bench: scaling did not reach ${last} entries in time`)), Math.max(60_000, last / 5)); });
    try {
      await Promise.race([finished, timeout]);
    } finally {
      clearTimeout(timer);
    }
    await load.stop();
    await verifyAllApplied('scaling', c.machines, c.leader, 20_000);
    const rates = checkpoints.map((x) => Math.round(WINDOW / ((marks.get(x + WINDOW)! - marks.get(x)!) / 1000)));
    return { entries: checkpoints, commitsPerSec: rates, rssMb: checkpoints.map((x) => Math.round(rss.get(x)! / 1e5) / 10) };
  } finally {
    await c.stop();
  }
}

export { sleep };
