/**
 * The kv mode: the service path. Three tickraft-kv processes (docs/examples/kv/server.js, built)
 * with FileStorage and fsync on, their data on the bench's disk (disk.ts), driven over HTTP by
 * autocannon in a process of its own (http-load.ts): writes (PUT, 16-byte values, one retry-safe
 * session per connection) and linearizable reads (GET through `readIndex()`), against the
 * leader. The ceiling is a bare `node:http` server answering the same PUTs with an empty 204,
 * driven by the same generator in the same run, at the same concurrency.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePorts } from '../../docs/examples/kv/processes.js';
import { benchTemp } from './disk.js';
import type { LoadConfig, LoadResult } from './http-load.js';
import { track } from './children.js';
import { atMost, JIT_WARMUP_CLIENTS, waitFor } from './workload.js';

const KV_SERVER_JS = fileURLToPath(new URL('../../docs/examples/kv/server.js', import.meta.url));
const HTTP_LOAD_JS = fileURLToPath(new URL('./http-load.js', import.meta.url));
const VALUE = '0123456789abcdef';
/**
 * The servers' defaults (heartbeat 50 ms, fsync on, snapshot every 1,000 entries) except the
 * election timeout: on a loaded shared machine a 150–300 ms timeout can elect a new leader in
 * the middle of a measurement, which fails the run (writes would answer 307). Steady-state
 * figures do not depend on it: reads confirm leadership with their own heartbeat round.
 */
const KV_FLAGS = ['--election', '1000-2000'];

/** One service figure. */
export interface KvFigures {
  opsPerSec: number;
  p50Us: number;
  p99Us: number;
}
/** Figures keyed by connections: `c1`, `c64`, `c256`. */
export type KvRow = Partial<Record<'c1' | 'c64' | 'c256', KvFigures>>;
/** The kv mode's figures (the JSON's `kv`). */
export interface KvResult {
  writes: KvRow;
  reads: KvRow;
  httpCeiling: KvRow;
}

/** Runs one autocannon load in its own process; fails on any non-2xx answer or connection error. */
async function load(what: string, cfg: LoadConfig): Promise<KvFigures> {
  const child = track(
    fork(HTTP_LOAD_JS, ['load', JSON.stringify(cfg)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }),
  );
  const r = await new Promise<LoadResult>((resolve, reject) => {
    let result: LoadResult | undefined;
    const timer = setTimeout(() => child.kill('SIGKILL'), cfg.warmupMs + cfg.measureMs + 60_000);
    child.on('message', (m) => {
      result = (m as { result: LoadResult }).result;
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (result) resolve(result);
      else reject(new Error(`bench: the load generator for ${what} exited (${code ?? signal}) without a result`));
    });
  });
  const bad = Object.entries(r.bad);
  if (bad.length > 0 || r.errors > 0 || r.ok === 0) {
    throw new Error(
      `BENCH FAILURE (${what}): ${r.ok} answers 2xx, others: ` +
        `${bad.map(([s, n]) => `${n} × ${s}`).join(', ') || 'none'}, ${r.errors} connection errors`,
    );
  }
  return { opsPerSec: r.opsPerSec, p50Us: r.p50Us, p99Us: r.p99Us };
}

interface KvMember {
  id: number;
  raft: number;
  http: number;
  child?: ChildProcess;
  exited?: Promise<unknown>;
  log: string[];
}

/** Three tickraft-kv processes on loopback, data under `dir`. */
class KvCluster {
  private constructor(
    readonly dir: string,
    readonly members: KvMember[],
  ) {}

  static async start(): Promise<KvCluster> {
    const dir = benchTemp('tickraft-bench-kv-');
    const ports = await freePorts(6);
    const members: KvMember[] = [1, 2, 3].map((id, i) => ({
      id,
      raft: ports[2 * i]!,
      http: ports[2 * i + 1]!,
      log: [],
    }));
    const c = new KvCluster(dir, members);
    const list = (port: (m: KvMember) => number): string =>
      members.map((m) => `${m.id}=127.0.0.1:${port(m)}`).join(',');
    const secret = randomBytes(24).toString('hex');
    for (const m of members) {
      const args = [
        '--id',
        String(m.id),
        '--data',
        join(dir, String(m.id)),
        '--peers',
        list((x) => x.raft),
        '--http',
        list((x) => x.http),
        '--secret',
        secret,
        ...KV_FLAGS,
      ];
      const child = track(spawn(process.execPath, [KV_SERVER_JS, ...args], { stdio: ['ignore', 'pipe', 'pipe'] }));
      const keep = (chunk: Buffer): void => {
        m.log.push(chunk.toString('utf8'));
        if (m.log.length > 50) m.log.shift();
      };
      child.stdout!.on('data', keep);
      child.stderr!.on('data', keep);
      m.child = child;
      m.exited = new Promise((r) => child.once('exit', r));
    }
    return c;
  }

  origin(m: KvMember): string {
    return `http://127.0.0.1:${m.http}`;
  }

  private async status(
    m: KvMember,
  ): Promise<{ role: string; term: number; commitIndex: number; lastApplied: number } | undefined> {
    try {
      const r = await fetch(`${this.origin(m)}/status`, { signal: AbortSignal.timeout(2000) });
      return r.ok
        ? ((await r.json()) as { status: { role: string; term: number; commitIndex: number; lastApplied: number } })
            .status
        : undefined;
    } catch {
      return undefined;
    }
  }

  /** The last lines every member printed, for a failure's message. */
  logs(): string {
    return this.members
      .map((m) => `[kv ${m.id} log tail]\n${m.log.join('').split('\n').slice(-15).join('\n')}`)
      .join('\n');
  }

  /** The member that leads and has committed in its term. */
  leader(): Promise<KvMember> {
    return waitFor(
      'a tickraft-kv leader',
      async () => {
        const all = await Promise.all(this.members.map((m) => this.status(m)));
        let best: number | undefined;
        all.forEach((s, i) => {
          if (s?.role === 'leader' && s.commitIndex > 0 && (best === undefined || s.term > all[best]!.term)) best = i;
        });
        return best === undefined ? undefined : this.members[best];
      },
      20_000,
      20,
    ).catch((e: unknown) => {
      throw new Error(`${(e as Error).message}\n${this.logs()}`);
    });
  }

  /** Every member applied as far as the leader had committed when asked; throws otherwise. */
  async verify(what: string, leader: KvMember): Promise<void> {
    const l = await this.status(leader);
    if (!l) throw new Error(`BENCH FAILURE (${what}): the kv leader does not answer`);
    await waitFor(
      `${what}: every kv replica to apply index ${l.commitIndex}`,
      async () => {
        const all = await Promise.all(this.members.map((m) => this.status(m)));
        return all.every((s) => s !== undefined && s.lastApplied >= l.commitIndex) ? true : undefined;
      },
      20_000,
      20,
    );
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.members.map(async (m) => {
        m.child?.kill('SIGTERM');
        await atMost(m.exited!, 6000);
        m.child?.kill('SIGKILL');
      }),
    );
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** Starts the bare node:http ceiling in a process of its own; returns its origin and a stop function. */
async function startCeiling(): Promise<{ origin: string; stop: () => Promise<void> }> {
  const child = track(fork(HTTP_LOAD_JS, ['ceiling'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m) => resolve((m as { port: number }).port));
    child.once('exit', () => reject(new Error('bench: the HTTP ceiling server exited before it listened')));
  });
  const exited = new Promise((r) => child.once('exit', r));
  return {
    origin: `http://127.0.0.1:${port}`,
    stop: async () => {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/** Which cases a run measures: connections for writes, reads and the ceiling. */
export interface KvPlan {
  writes: number[];
  reads: number[];
  ceiling: number[];
  /** Before the first case, writes at 64 connections this long to each server, unmeasured (see workload.ts, Timing). */
  jitWarmupMs: number;
  warmupMs: number;
  measureMs: number;
  /**
   * Per connection count, the ceiling, writes and reads run this many times in turn, and each
   * figure is the median of its rounds: a change in the machine's load (other processes on a
   * shared machine) then weighs on tickraft-kv and its ceiling alike.
   */
  rounds: number;
}

/** The median of each field over the rounds (the lower middle one for an even count). */
function median(runs: KvFigures[]): KvFigures {
  const mid = (pick: (f: KvFigures) => number): number => {
    const sorted = runs.map(pick).sort((a, b) => a - b);
    return sorted[Math.floor((sorted.length - 1) / 2)]!;
  };
  return { opsPerSec: mid((f) => f.opsPerSec), p50Us: mid((f) => f.p50Us), p99Us: mid((f) => f.p99Us) };
}

/**
 * The kv mode: per concurrency, rounds of the ceiling, then writes, then reads, so each trio
 * shares the machine's moment; each figure is the median of its rounds.
 */
export async function runKv(plan: KvPlan, log: (s: string) => void): Promise<KvResult> {
  const out: KvResult = { writes: {}, reads: {}, httpCeiling: {} };
  const cluster = await KvCluster.start();
  const ceiling = await startCeiling();
  try {
    const leader = await cluster.leader();
    const origin = cluster.origin(leader);
    const put = await fetch(`${origin}/kv/r`, { method: 'PUT', body: VALUE });
    if (put.status !== 204) throw new Error(`bench: preloading the read key answered HTTP ${put.status}`);
    const { warmupMs, measureMs } = plan;
    if (plan.jitWarmupMs > 0) {
      // The smallest case runs first: without this it would measure servers whose JIT has seen one request.
      log(`  kv: JIT warm-up, ${JIT_WARMUP_CLIENTS} connections…`);
      const warm = { method: 'PUT', body: VALUE, connections: JIT_WARMUP_CLIENTS, sessions: true } as const;
      const timing = { warmupMs: 0, measureMs: plan.jitWarmupMs };
      await load('HTTP ceiling JIT warm-up', { ...warm, ...timing, url: `${ceiling.origin}/kv/w` });
      await load('kv JIT warm-up', { ...warm, ...timing, url: `${origin}/kv/w` });
    }
    const all = [...new Set([...plan.writes, ...plan.reads, ...plan.ceiling])].sort((a, b) => a - b);
    for (const c of all) {
      const key = `c${c}` as keyof KvRow;
      const write = { method: 'PUT', body: VALUE, connections: c, warmupMs, measureMs, sessions: true } as const;
      const read = { method: 'GET', connections: c, warmupMs, measureMs, sessions: false } as const;
      const runs: Record<keyof KvResult, KvFigures[]> = { writes: [], reads: [], httpCeiling: [] };
      for (let r = 1; r <= plan.rounds; r++) {
        const round = plan.rounds > 1 ? ` (round ${r} of ${plan.rounds})` : '';
        if (plan.ceiling.includes(c)) {
          log(`  kv: HTTP ceiling c${c}${round}…`);
          runs.httpCeiling.push(await load(`HTTP ceiling c${c}`, { ...write, url: `${ceiling.origin}/kv/w` }));
        }
        if (plan.writes.includes(c)) {
          log(`  kv: writes c${c}${round}…`);
          runs.writes.push(await load(`kv writes c${c}`, { ...write, url: `${origin}/kv/w` }));
        }
        if (plan.reads.includes(c)) {
          log(`  kv: reads c${c}${round}…`);
          runs.reads.push(await load(`kv reads c${c}`, { ...read, url: `${origin}/kv/r` }));
        }
      }
      for (const kind of ['writes', 'reads', 'httpCeiling'] as const) {
        if (runs[kind].length > 0) out[kind][key] = median(runs[kind]);
      }
    }
    await cluster.verify('kv', leader);
    return out;
  } catch (e) {
    throw new Error(`${(e as Error).message}\n${cluster.logs()}`);
  } finally {
    await ceiling.stop();
    await cluster.stop();
  }
}
