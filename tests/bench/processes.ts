/**
 * The `tcp`, `tcpFsync` and failover modes: 3 bench replicas (server.ts) as child processes on
 * 127.0.0.1, driven over IPC. Every child is killed on every exit path, including errors and
 * the bench's own exit.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { freePorts } from '../../docs/examples/kv/processes.js';
import { SERVER_JS, track } from './children.js';
import { benchTemp } from './disk.js';
import { IpcPeer } from './ipc.js';
import type { Figures, Scaling } from './inprocess.js';
import type { Request, ScalingConfig, ServerConfig } from './server.js';
import { atMost, sleep, waitFor, wallNow, type Timing } from './workload.js';

/** BENCH_CPU_PROF=DIR profiles the bench replicas (`node --cpu-prof`) into DIR. */
const EXEC_ARGV = process.env.BENCH_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_CPU_PROF] : [];

interface Status {
  role: string;
  term: number;
  commitIndex: number;
  lastApplied: number;
  applied: number;
  sum: number;
}
type Distributive<T> = T extends unknown ? Omit<T, 'rid'> : never;

class Member {
  child: ChildProcess | undefined;
  private readonly ipc: IpcPeer;

  constructor(readonly cfg: ServerConfig) {
    this.ipc = new IpcPeer(`bench replica ${cfg.id}`);
  }

  get exited(): Promise<void> {
    return this.ipc.exited;
  }

  set onEvent(f: ((m: Record<string, unknown>) => void) | undefined) {
    this.ipc.onEvent = f;
  }

  spawn(): Promise<void> {
    this.child = track(
      fork(SERVER_JS, [JSON.stringify(this.cfg)], {
        execArgv: EXEC_ARGV,
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      }),
    );
    return this.ipc.attach(this.child);
  }

  request<R = Record<string, unknown>>(req: Distributive<Request>, timeoutMs = 60_000): Promise<R> {
    return this.ipc.request<R>(req, timeoutMs);
  }

  status(): Promise<Status | undefined> {
    return this.request<Status>({ type: 'status' }, 2000).catch(() => undefined);
  }

  get running(): boolean {
    return this.ipc.running;
  }

  async kill(): Promise<void> {
    if (this.running) this.child!.kill('SIGKILL');
    await this.exited;
  }
}

export class BenchProcesses {
  private constructor(
    readonly members: Member[],
    readonly dir: string,
  ) {}

  static async start(
    storage: 'memory' | 'file',
    heartbeat = 50,
    election: [number, number] = [150, 300],
    leaderSendsBeforeSave = false,
  ): Promise<BenchProcesses> {
    const dir = benchTemp('tickraft-bench-');
    const ports = await freePorts(3);
    const secret = randomBytes(24).toString('hex');
    const portMap = Object.fromEntries(ports.map((p, i) => [i + 1, p]));
    const members = [1, 2, 3].map(
      (id) =>
        new Member({
          id,
          ports: portMap,
          secret,
          storage,
          dir: join(dir, String(id)),
          heartbeat,
          election,
          leaderSendsBeforeSave,
        }),
    );
    const c = new BenchProcesses(members, dir);
    try {
      await Promise.all(members.map((m) => m.spawn()));
    } catch (e) {
      await c.destroy();
      throw e;
    }
    return c;
  }

  /** The index (in members) of the leader of the highest term that has committed its noop. */
  async leader(timeoutMs = 10_000): Promise<number> {
    return waitFor(
      'a leader among the bench processes',
      async () => {
        const all = await Promise.all(this.members.map((m) => (m.running ? m.status() : undefined)));
        let best: number | undefined;
        all.forEach((s, i) => {
          if (s?.role === 'leader' && s.commitIndex > 0 && (best === undefined || s.term > all[best]!.term)) best = i;
        });
        return best;
      },
      timeoutMs,
      10,
    );
  }

  /** Every running replica applied what the leader applied; throws otherwise. */
  async verify(what: string, leader: number): Promise<void> {
    const l = await this.members[leader]!.status();
    if (!l) throw new Error(`BENCH FAILURE (${what}): the leader does not answer`);
    let last: (Status | undefined)[] = [];
    try {
      await waitFor(
        `${what}: every replica to apply all transitions`,
        async () => {
          last = await Promise.all(this.members.map((m) => m.status()));
          return last.every((s) => s !== undefined && s.applied === l.applied && s.sum === l.sum) ? true : undefined;
        },
        20_000,
        20,
      );
    } catch {
      throw new Error(
        `BENCH FAILURE (${what}): replicas disagree: leader applied ${l.applied} (sum ${l.sum}); ${last.map((s, i) => `#${i + 1} ${s ? `${s.applied} (sum ${s.sum})` : 'no answer'}`).join(', ')}`,
      );
    }
  }

  async destroy(): Promise<void> {
    await Promise.all(
      this.members.map(async (m) => {
        if (m.running) await m.request({ type: 'stop' }, 3000).catch(() => undefined);
        await atMost(m.exited, 2000);
        await m.kill();
      }),
    );
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** One tcp / tcpFsync run per client count, each on a fresh cluster. */
export async function runTcp(
  storage: 'memory' | 'file',
  clients: number,
  timing: Timing,
  leaderSendsBeforeSave = false,
): Promise<Figures> {
  const c = await BenchProcesses.start(storage, 50, [150, 300], leaderSendsBeforeSave);
  try {
    const leader = await c.leader();
    const r = await c.members[leader]!.request<Figures & { total: number }>(
      { type: 'load', clients, ...timing },
      timing.jitWarmupMs + timing.warmupMs + timing.measureMs + 60_000,
    );
    await c.verify(`${storage === 'file' ? 'tcpFsync' : 'tcp'} c${clients}`, leader);
    return { commitsPerSec: r.commitsPerSec, p50Us: r.p50Us, p99Us: r.p99Us };
  } finally {
    await c.destroy();
  }
}

export interface Failover {
  trials: number;
  medianMs: number;
  p90Ms: number;
  samples: number[];
}

/**
 * SIGKILL the leader under light load (one proposal in flight); the time from the kill to the
 * wall-clock moment a new leader reports its first applied transition. The killed replica is
 * restarted on its FileStorage between trials.
 */
export async function runFailover(trials: number): Promise<Failover> {
  const c = await BenchProcesses.start('file', 50, [150, 300]);
  const samples: number[] = [];
  try {
    const commits: { id: number; term: number; at: number }[] = [];
    for (const m of c.members)
      m.onEvent = (e) => {
        if (e.type === 'firstCommit') commits.push(e as unknown as { id: number; term: number; at: number });
      };
    await Promise.all(c.members.map((m) => m.request({ type: 'light', on: true })));
    for (let t = 0; t < trials; t++) {
      const leader = await c.leader();
      const victim = c.members[leader]!;
      const term = (await victim.status())?.term ?? 0;
      // Let it commit under load for a moment.
      await sleep(150);
      const killedAt = wallNow();
      await victim.kill();
      const first = await waitFor(
        `a new leader's first commit (trial ${t + 1})`,
        () => commits.find((x) => x.term > term && x.id !== victim.cfg.id && x.at > killedAt),
        30_000,
        2,
      );
      samples.push(first.at - killedAt);
      await victim.spawn();
      await victim.request({ type: 'light', on: true });
      // Let the restarted replica catch up before the next trial.
      await waitFor(
        'the restarted replica to catch up',
        async () => {
          const [a, b] = await Promise.all([victim.status(), c.members.find((m) => m.cfg.id === first.id)!.status()]);
          return a && b && a.lastApplied >= b.commitIndex - 50 ? true : undefined;
        },
        10_000,
        20,
      );
      await sleep(200);
    }
    await Promise.all(c.members.map((m) => m.request({ type: 'light', on: false })));
    await sleep(100);
    await c.verify('failover', await c.leader());
    const sorted = samples.slice().sort((a, b) => a - b);
    const q = (p: number): number => Math.round(sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!);
    return { trials, medianMs: q(0.5), p90Ms: q(0.9), samples: samples.map(Math.round) };
  } finally {
    await c.destroy();
  }
}

/** Runs the scaling measurement in a fresh process, so the RSS figures are its own. */
export function runScalingChild(config: ScalingConfig): Promise<Scaling> {
  const stdio = ['ignore', 'inherit', 'inherit', 'ipc'] as const;
  const child = track(fork(SERVER_JS, ['scaling', JSON.stringify(config)], { stdio: [...stdio] }));
  return new Promise((resolve, reject) => {
    let result: Scaling | undefined;
    const timer = setTimeout(() => child.kill('SIGKILL'), 180_000);
    child.on('message', (m) => {
      result = (m as { result: Scaling }).result;
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (result) resolve(result);
      else reject(new Error(`bench: the scaling process exited (${code ?? signal}) without a result`));
    });
  });
}
