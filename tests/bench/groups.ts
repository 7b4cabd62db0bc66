/**
 * The multi-raft figures (issue 14), `npm run bench -- --groups [--quick] [--json FILE]` (after the
 * single-group figures of the same run; `--groups-only` alone): three
 * processes (group-worker.ts, forked with an IPC channel), each one RaftHost over TcpHostNetwork on
 * localhost and one SharedLog (fsync on) in its own directory on the bench's disk, every group
 * having a member in each. It measures aggregate durable commits per second with 1,024 proposals
 * in flight in total over 1, 8 and 64 groups (leaders placed a third on each process); CPU and
 * envelopes per second of 100 and 1,000 idle groups per process once quiescent; failover when the
 * process leading the most groups is SIGKILLed, with 1 and with 64 groups; and RSS per idle group
 * at 10,000 groups per process. Prints each target as met or not met; asserts nothing about
 * timings, and fails only if something breaks.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { freePorts } from '../../docs/examples/kv/processes.js';
import { benchTemp } from './disk.js';
import { preferredLeader, type GroupWorkerConfig, type GroupWorkerRequest, type WorkerStats } from './group-worker.js';
import { IpcPeer } from './ipc.js';
import { track } from './children.js';
import { atMost, sleep, waitFor } from './workload.js';

const WORKER_JS = fileURLToPath(new URL('./group-worker.js', import.meta.url));
/** BENCH_CPU_PROF=DIR profiles the workers (`node --cpu-prof`) into DIR. */
const PROF = process.env.BENCH_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_CPU_PROF] : [];
type Distributive<T> = T extends unknown ? Omit<T, 'rid'> : never;
type Stats = WorkerStats & { base: { rss: number; heapUsed: number; heapTotal: number; external: number } };

/** Timeouts and liveness of one run: every case of a kind uses the same, whatever its group count. */
interface Settings {
  heartbeat: number;
  election: [number, number];
  livenessInterval: number;
  suspectAfter: number;
}
/** Throughput and failover: as the single-group figures' failover, with quiescence's failure detector. */
const BUSY: Settings = { heartbeat: 50, election: [300, 600], livenessInterval: 100, suspectAfter: 400 };
/** Idle groups: slower timeouts, so a thousand elections at start do not pile up. */
const IDLE: Settings = { heartbeat: 200, election: [1000, 2000], livenessInterval: 100, suspectAfter: 400 };
/**
 * Memory at 10,000 groups per process: slower still, so that a process busy with a step's thousand elections (and
 * its log's checkpoint of every group) is not suspected by its peers, which would wake every group at once.
 */
const MEMORY: Settings = { heartbeat: 1000, election: [5000, 10_000], livenessInterval: 200, suspectAfter: 3000 };

class Worker {
  readonly child: ChildProcess;
  readonly ready: Promise<void>;
  private readonly ipc: IpcPeer;

  constructor(readonly cfg: GroupWorkerConfig) {
    this.ipc = new IpcPeer(`group worker ${cfg.id}`);
    this.child = track(
      fork(WORKER_JS, [JSON.stringify(cfg)], {
        execArgv: ['--expose-gc', ...PROF],
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      }),
    );
    this.ready = this.ipc.attach(this.child);
  }

  get exited(): Promise<void> {
    return this.ipc.exited;
  }

  set onEvent(f: ((m: Record<string, unknown>) => void) | undefined) {
    this.ipc.onEvent = f;
  }

  get running(): boolean {
    return this.ipc.running;
  }

  request<R = Record<string, unknown>>(req: Distributive<GroupWorkerRequest>, timeoutMs = 60_000): Promise<R> {
    return this.ipc.request<R>(req, timeoutMs);
  }

  stats(gc = false): Promise<Stats> {
    return this.request<Stats>({ type: 'stats', gc });
  }
}

/** Three group workers, each a member of every group 1..groups. */
class GroupCluster {
  private constructor(
    readonly workers: Worker[],
    public groups: number,
  ) {}

  static async start(groups: number, s: Settings): Promise<GroupCluster> {
    const ports = await freePorts(3);
    const secret = randomBytes(24).toString('hex');
    const portMap = Object.fromEntries(ports.map((p, i) => [i + 1, p]));
    const workers = [1, 2, 3].map(
      (id) => new Worker({ id, ports: portMap, secret, dir: benchTemp(`tickraft-groups-${id}-`), groups, ...s }),
    );
    const c = new GroupCluster(workers, groups);
    try {
      await Promise.all(workers.map((w) => w.ready));
    } catch (e) {
      await c.stop();
      throw e;
    }
    return c;
  }

  stats(gc = false): Promise<Stats[]> {
    return Promise.all(this.workers.map((w) => w.stats(gc)));
  }

  /** Waits until every group has one leader among the running workers; returns the stats that showed it. */
  async untilLeaders(timeoutMs = 120_000): Promise<Stats[]> {
    return waitFor(
      `a leader in each of ${this.groups} groups`,
      async () => {
        const all = await this.stats();
        return new Set(all.flatMap((s) => s.leading)).size === this.groups ? all : undefined;
      },
      timeoutMs,
      50,
    );
  }

  /** Moves leaderships until each worker leads the groups placed on it (a third each). */
  async placeLeaders(timeoutMs = 60_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const all = await this.stats();
      const placed = all.every((s, i) => s.leading.every((g) => preferredLeader(g) === i + 1));
      if (placed && new Set(all.flatMap((s) => s.leading)).size === this.groups) return;
      if (Date.now() > end) throw new Error(`bench: leaders of ${this.groups} groups not placed in ${timeoutMs} ms`);
      await Promise.all(this.workers.map((w) => w.request({ type: 'place' })));
      await sleep(300);
    }
  }

  /**
   * Adds groups up to `to` in steps of `step`, each step elected and quiescent before the next: thousands of
   * elections at once would have each tick last longer than an election timeout, and no election would end.
   */
  async grow(to: number, step: number): Promise<void> {
    while (this.groups < to) {
      const n = Math.min(to, this.groups + step);
      await Promise.all(this.workers.map((w) => w.request({ type: 'grow', to: n })));
      this.groups = n;
      await this.untilLeaders();
      await this.untilQuiescent();
    }
  }

  /** Waits until every group is quiescent on every member. */
  async untilQuiescent(timeoutMs = 120_000): Promise<void> {
    await waitFor(
      `all ${this.groups} groups to quiesce`,
      async () => ((await this.stats()).every((s) => s.quiescent === this.groups) ? true : undefined),
      timeoutMs,
      100,
    );
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.workers.map(async (w) => {
        if (w.running) await w.request({ type: 'stop' }, 10_000).catch(() => undefined);
        await atMost(w.exited, 3000);
        if (w.running) w.child.kill('SIGKILL');
        await w.exited;
      }),
    );
  }
}

const median = (xs: number[]): number => {
  const s = xs.slice().sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.floor(s.length / 2)]!;
};

/** Aggregate durable commits per second over `ms`, 1,024 proposals in flight in total, leaders placed. */
async function throughput(
  groups: number,
  ms: number,
): Promise<{
  commitsPerSec: number;
  leadersPerProcess: number[];
  cpuPercentEachProcess: number[];
  syncsPerSecEachProcess: number[];
  commitsPerSync: number;
  cpuUsPerCommit: number;
  machineCpuPercent: number;
}> {
  const c = await GroupCluster.start(groups, BUSY);
  try {
    await c.untilLeaders();
    await c.placeLeaders();
    const perGroup = Math.ceil(1024 / groups);
    await Promise.all(c.workers.map((w) => w.request({ type: 'load', perGroup })));
    await sleep(Math.min(1000, ms / 3)); // warm-up
    const a = await c.stats();
    const machineBefore = cpuTimes();
    await sleep(ms);
    const b = await c.stats();
    const machineAfter = cpuTimes();
    // Each process's own rate over its own clock readings, summed: no IPC latency in the window.
    const commitsPerSec = a.reduce((n, s, i) => n + ((b[i]!.committed - s.committed) * 1000) / (b[i]!.at - s.at), 0);
    // The CPU each process used in the window (100 = one core): the machine's cores bound the sum.
    const cpuPercentEachProcess = a.map((s, i) => ((b[i]!.cpuUs - s.cpuUs) / 1000 / (b[i]!.at - s.at)) * 100);
    // fdatasyncs per second: with the CPU, says whether the disk's latency or the cores bound the rate.
    const syncsPerSecEachProcess = a.map((s, i) => ((b[i]!.syncs - s.syncs) * 1000) / (b[i]!.at - s.at));
    const commitsPerSync = commitsPerSec / (syncsPerSecEachProcess.reduce((x, y) => x + y, 0) / 3);
    const leadersPerProcess = b.map((s) => s.leading.length);
    // The three processes' CPU over their commits: what a commit costs, whatever bounds the rate.
    const delta = (k: 'cpuUs' | 'committed') => b.reduce((n, s, i) => n + s[k] - a[i]![k], 0);
    const cpuUsPerCommit = delta('cpuUs') / delta('committed');
    // How busy the machine's cores were (every process, the kernel's share included): near 100, the cores bound the rate.
    const machineCpuPercent =
      (1 - (machineAfter.idle - machineBefore.idle) / (machineAfter.total - machineBefore.total)) * 100;
    return {
      commitsPerSec,
      leadersPerProcess,
      cpuPercentEachProcess,
      syncsPerSecEachProcess,
      commitsPerSync,
      cpuUsPerCommit,
      machineCpuPercent,
    };
  } finally {
    await c.stop();
  }
}

/** The machine's CPU time so far, all cores: idle and total, in ms. */
function cpuTimes(): { idle: number; total: number } {
  let idle = 0;
  let total = 0;
  for (const { times } of cpus()) {
    idle += times.idle;
    total += times.user + times.nice + times.sys + times.idle + times.irq;
  }
  return { idle, total };
}

interface Idle {
  groups: number;
  cpuPercentPerProcess: number;
  cpuPercentEachProcess: number[];
  messagesPerSec: number;
  raftMessagesPerSec: number;
  quiescent: boolean;
}

/** `groups` idle groups in each of the three processes: once quiescent, CPU per process and envelopes per second. */
async function idle(groups: number, ms: number): Promise<Idle> {
  const c = await GroupCluster.start(0, IDLE);
  try {
    await c.grow(groups, 1000);
    await sleep(500); // the last notes and answers
    const a = await c.stats();
    await sleep(ms);
    const b = await c.stats();
    const cpu = a.map((s, i) => ((b[i]!.cpuUs - s.cpuUs) / 1000 / (b[i]!.at - s.at)) * 100);
    const rate = (k: 'envelopesSent' | 'messagesSent') =>
      a.reduce((n, s, i) => n + ((b[i]![k] - s[k]) * 1000) / (b[i]!.at - s.at), 0);
    return {
      groups,
      cpuPercentPerProcess: Math.max(...cpu),
      cpuPercentEachProcess: cpu,
      messagesPerSec: rate('envelopesSent'),
      raftMessagesPerSec: rate('messagesSent'),
      quiescent: b.every((s) => s.quiescent === groups),
    };
  } finally {
    await c.stop();
  }
}

/**
 * RSS and JS heap per idle group at `groups` per process: each process's (after − before creating its groups),
 * once every group is quiescent and after full collections, divided by `groups`; the largest of the three.
 */
async function memory(groups: number): Promise<{ rssBytesPerIdleGroup: number; heapBytesPerIdleGroup: number }> {
  const c = await GroupCluster.start(0, MEMORY);
  try {
    await c.grow(groups, 1000);
    await sleep(1000);
    const s = await c.stats(true);
    // BENCH_GROUPS_HEAPSNAPSHOT=DIR: the first process's heap, to see what a group costs.
    const snapshots = process.env.BENCH_GROUPS_HEAPSNAPSHOT;
    if (snapshots)
      await c.workers[0]!.request({ type: 'heapSnapshot', file: `${snapshots}/groups-${groups}.heapsnapshot` });
    return {
      rssBytesPerIdleGroup: Math.max(...s.map((x) => (x.rss - x.base.rss) / groups)),
      heapBytesPerIdleGroup: Math.max(...s.map((x) => (x.heapUsed - x.base.heapUsed) / groups)),
    };
  } finally {
    await c.stop();
  }
}

/**
 * Failover: once every group is quiescent and the leaders placed, SIGKILL of the process leading the most groups;
 * for each group it led, the ms from the kill until a surviving process leads it and has applied a write there.
 */
async function failover(groups: number): Promise<number[]> {
  const c = await GroupCluster.start(groups, BUSY);
  try {
    await c.untilLeaders();
    await c.placeLeaders();
    await c.untilQuiescent();
    const all = await c.stats();
    let v = 0;
    all.forEach((s, i) => {
      if (s.leading.length > all[v]!.leading.length) v = i;
    });
    const led = all[v]!.leading;
    const victim = c.workers[v]!;
    const times = new Map<number, number>();
    let killedAt = 0;
    const survivors = c.workers.filter((w) => w !== victim);
    for (const w of survivors)
      w.onEvent = (e) => {
        if (e.type === 'failedOver') times.set(e.group as number, (e.at as number) - killedAt);
      };
    await Promise.all(survivors.map((w) => w.request({ type: 'watch', groups: led })));
    killedAt = Date.now();
    victim.child.kill('SIGKILL');
    await waitFor(
      `every group of the killed process to fail over`,
      () => (times.size === led.length ? true : undefined),
      30_000,
      5,
    );
    return [...times.values()];
  } finally {
    await c.stop();
  }
}

interface Target {
  what: string;
  value: string;
  met: boolean;
}

/** Runs the multi-raft figures; `quick` shortens every window and does one failover trial per case. */
export async function runGroups(quick: boolean, log: (s: string) => void) {
  // BENCH_GROUPS_ONLY=memory (or idle, throughput, failover) runs one kind alone, to profile it;
  // BENCH_GROUPS_MEMORY=N measures memory at N groups per process instead of 10,000;
  // BENCH_GROUPS_SIZES=64 (or 1,64…) and BENCH_GROUPS_MS=N choose the throughput cases and window.
  const only = process.env.BENCH_GROUPS_ONLY;
  const out: Record<string, unknown> = {};
  const run = (kind: string) => only === undefined || only === kind;
  const memGroups = Number(process.env.BENCH_GROUPS_MEMORY ?? 10_000);
  if (run('memory')) Object.assign(out, await runMemory(memGroups, log));
  if (run('idle')) Object.assign(out, await runIdle(quick ? 5000 : 30_000, log));
  if (run('throughput')) {
    const sizes = (process.env.BENCH_GROUPS_SIZES ?? '1,8,64').split(',').map(Number);
    const ms = Number(process.env.BENCH_GROUPS_MS ?? (quick ? 1000 : 5000));
    Object.assign(out, await runThroughput(quick ? 1 : 3, ms, sizes, log));
  }
  if (run('failover')) Object.assign(out, await runFailovers(quick ? 1 : 5, log));
  const targets =
    only === undefined && process.env.BENCH_GROUPS_SIZES === undefined ? checkTargets(out, memGroups) : [];
  log('  groups: targets (issue 14)');
  for (const t of targets) log(`    ${t.met ? 'met    ' : 'NOT MET'}  ${t.what}: ${t.value}`);
  return {
    ...out,
    targets,
    setup:
      '3 processes (tests/bench/group-worker.ts), each one RaftHost over TcpHostNetwork (localhost) and one ' +
      'SharedLog (fsync on); every group has a member in each process',
  };
}

async function runMemory(groups: number, log: (s: string) => void) {
  log(`  groups: RSS per idle group at ${groups.toLocaleString('en')} groups per process (3 processes)…`);
  const mem = await memory(groups);
  log(
    `    ${(mem.rssBytesPerIdleGroup / 1024).toFixed(1)} KiB RSS, ${(mem.heapBytesPerIdleGroup / 1024).toFixed(1)} ` +
      'KiB JS heap per idle group (the largest of the three processes)',
  );
  return { ...mem, memoryGroupsPerProcess: groups };
}

async function runIdle(ms: number, log: (s: string) => void) {
  const out: Record<string, Idle> = {};
  for (const n of [100, 1000]) {
    log(`  groups: ${n.toLocaleString('en')} idle groups per process, ${ms / 1000} s once quiescent…`);
    const i = await idle(n, ms);
    out[`idle${n}`] = i;
    log(
      `    CPU per process ${i.cpuPercentEachProcess.map((p) => `${p.toFixed(2)}%`).join(' / ')}, ` +
        `${i.messagesPerSec.toFixed(0)} envelopes/s and ${i.raftMessagesPerSec.toFixed(0)} Raft messages/s ` +
        `in all (quiescent: ${i.quiescent})`,
    );
  }
  return out;
}

/** 1, 8 and 64 groups (or `sizes`), alternated `rounds` times: the median of each. */
async function runThroughput(rounds: number, ms: number, sizes: number[], log: (s: string) => void) {
  const out: Record<string, unknown> = {};
  const rates: Record<number, number[]> = Object.fromEntries(sizes.map((n) => [n, []]));
  for (let r = 0; r < rounds; r++)
    for (const n of sizes) {
      log(`  groups: ${n} group(s), 1,024 in flight, fsync on (round ${r + 1}/${rounds})…`);
      const t = await throughput(n, ms);
      rates[n]!.push(t.commitsPerSec);
      // The rate is the median of the rounds; the details beside it are the last round's (each round is logged).
      out[`g${n}`] = {
        commitsPerSec: median(rates[n]!),
        rounds: rates[n]!.slice(),
        leadersPerProcess: t.leadersPerProcess,
        cpuPercentEachProcess: t.cpuPercentEachProcess,
        syncsPerSecEachProcess: t.syncsPerSecEachProcess,
        commitsPerSync: t.commitsPerSync,
        cpuUsPerCommit: t.cpuUsPerCommit,
        machineCpuPercent: t.machineCpuPercent,
      };
      log(
        `    ${t.commitsPerSec.toFixed(0)} commits/s; leaders per process ${t.leadersPerProcess.join('/')}; ` +
          `CPU per process ${t.cpuPercentEachProcess.map((p) => `${p.toFixed(0)}%`).join(' / ')}; ` +
          `fdatasyncs/s ${t.syncsPerSecEachProcess.map((p) => p.toFixed(0)).join(' / ')} ` +
          `(${t.commitsPerSync.toFixed(1)} commits per sync of a process); ` +
          `${t.cpuUsPerCommit.toFixed(1)} µs of CPU per commit (three processes); machine's cores ${t.machineCpuPercent.toFixed(0)}% busy`,
      );
    }
  return out;
}

/** Failover of 1 and of 64 groups, alternated `trials` times: the median over every affected group of every trial. */
async function runFailovers(trials: number, log: (s: string) => void) {
  const fo: Record<number, { samples: number[]; perTrial: number[] }> = {
    1: { samples: [], perTrial: [] },
    64: { samples: [], perTrial: [] },
  };
  for (let t = 0; t < trials; t++)
    for (const n of [1, 64]) {
      log(`  groups: failover of ${n} quiescent group(s), SIGKILL of a process (trial ${t + 1}/${trials})…`);
      const times = await failover(n);
      fo[n]!.samples.push(...times);
      fo[n]!.perTrial.push(median(times));
      log(`    median ${median(times)} ms over the ${times.length} group(s) it led (max ${Math.max(...times)} ms)`);
    }
  const out: Record<string, unknown> = {};
  for (const n of [1, 64])
    out[`failover${n}`] = {
      medianMs: median(fo[n]!.samples),
      trials,
      groups: fo[n]!.samples.length,
      perTrialMedianMs: fo[n]!.perTrial,
    };
  return out;
}

/** Issue 14's targets, as met or not: printed, never asserted. */
function checkTargets(out: Record<string, unknown>, memGroups: number): Target[] {
  const f = (k: string) => out[k] as Record<string, number>;
  return [
    {
      what: '64 groups ≥ 1.5 × 1 group (commits/s)',
      value: `${(f('g64').commitsPerSec! / f('g1').commitsPerSec!).toFixed(2)} ×`,
      met: f('g64').commitsPerSec! >= 1.5 * f('g1').commitsPerSec!,
    },
    {
      what: '1,000 idle groups: ≤ 5% of one core per process',
      value: `${f('idle1000').cpuPercentPerProcess!.toFixed(2)}%`,
      met: f('idle1000').cpuPercentPerProcess! <= 5,
    },
    {
      what: 'idle envelope rate independent of the group count (1,000 vs 100, within 20%)',
      value: `${f('idle1000').messagesPerSec!.toFixed(0)} vs ${f('idle100').messagesPerSec!.toFixed(0)} /s`,
      met: Math.abs(f('idle1000').messagesPerSec! / f('idle100').messagesPerSec! - 1) <= 0.2,
    },
    {
      what: 'failover of 64 groups ≤ 2 × failover of 1 group (median)',
      value: `${f('failover64').medianMs} vs ${f('failover1').medianMs} ms`,
      met: f('failover64').medianMs! <= 2 * f('failover1').medianMs!,
    },
    {
      what: `RSS ≤ 20 KB per idle group at ${memGroups.toLocaleString('en')} groups per process`,
      value: `${((f('rssBytesPerIdleGroup') as unknown as number) / 1000).toFixed(1)} KB`,
      met: (out.rssBytesPerIdleGroup as number) <= 20_000,
    },
  ];
}

/** What {@link runGroups} measures: `groups` in the bench's JSON. */
export type GroupsResult = Awaited<ReturnType<typeof runGroups>>;
