// A tickraft-kv cluster under the suite's control: member processes on loopback with
// FileStorage (fsync on unless a run says otherwise), every Raft link through the suite's
// proxies (see proxy.ts), and the levers the nemeses pull: SIGKILL, SIGSTOP/SIGCONT, restart.
import { spawn, type ChildProcess } from 'node:child_process';
import { Agent } from 'node:http';
import { join } from 'node:path';
import { httpRequest, sleep, type HttpAnswer } from '../../docs/examples/kv/client.js';
import { createServer } from 'node:net';
import { readFile } from 'node:fs/promises';
import type { NodeDump, NodeStatus } from '../../docs/examples/kv/processes.js';
import { Network, type Rng } from './proxy.js';

/** One member process. */
export interface Member {
  readonly id: number;
  readonly raftPort: number;
  readonly httpPort: number;
  /** Its data directory (may be a tmpfs mount point for the disk-full run). */
  dataDir: string;
  child: ChildProcess | undefined;
  exited: Promise<number | null> | undefined;
  /** Exit code (or signal name) of the last process, once it exited. */
  lastExit: string | undefined;
  paused: boolean;
  /** Extra environment for its process (fault injection). */
  env: Record<string, string>;
  /** The last lines it printed. */
  log: string[];
  /** Torn tails its storage cut at start, over every process of this member. */
  tornTails: number;
}

/** How the members run. */
export interface ClusterOptions {
  serverJs: string;
  /** Root of the data directories. */
  dir: string;
  ids: number[];
  /** Extra tickraft-kv flags (e.g. --snapshot-delta, --fsync off). */
  args: string[];
  /** Node flags for every member process (e.g. --import of a fault layer). */
  nodeArgs: string[];
  rng: Rng;
}

const LOG_LINES = 300;

const handedOut = new Set<number>();

/**
 * `n` free ports below the kernel's ephemeral range. A member listens on the same port after
 * every restart; a port from the ephemeral range could meanwhile be taken as the source port of
 * some outgoing connection, and the restart would fail with EADDRINUSE.
 */
export async function stablePorts(n: number): Promise<number[]> {
  // Ports handed out are not free while their owner is down, so they are never handed out twice.
  const range = await readFile('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').catch(() => '32768 60999');
  const low = Math.min(Number(range.trim().split(/\s+/)[0]) || 32768, 32768);
  const out: number[] = [];
  for (let tries = 0; out.length < n && tries < n * 50; tries++) {
    const port = 10_000 + Math.floor(Math.random() * (low - 10_000));
    if (out.includes(port) || handedOut.has(port)) continue;
    const free = await new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (free) out.push(port);
  }
  if (out.length < n) throw new Error(`could not find ${n} free ports below ${low}`);
  for (const p of out) handedOut.add(p);
  return out;
}

/** The cluster. {@link FaultCluster.create}, then {@link start}. */
export class FaultCluster {
  readonly members = new Map<number, Member>();
  readonly net: Network;
  readonly secret = 'faults-suite-secret-0123456789';
  /** Keep-alive agent for the suite's own control requests. */
  readonly agent = new Agent({ keepAlive: true, maxSockets: 16 });

  private constructor(readonly o: ClusterOptions) {
    this.net = new Network((id) => this.member(id).raftPort, o.rng);
  }

  static async create(o: ClusterOptions): Promise<FaultCluster> {
    const c = new FaultCluster(o);
    const ports = await stablePorts(o.ids.length * 2);
    o.ids.forEach((id, i) =>
      c.members.set(id, {
        id,
        raftPort: ports[2 * i]!,
        httpPort: ports[2 * i + 1]!,
        dataDir: join(o.dir, `m${id}`),
        child: undefined,
        exited: undefined,
        lastExit: undefined,
        paused: false,
        env: {},
        log: [],
        tornTails: 0,
      }),
    );
    await c.net.start(o.ids, stablePorts);
    return c;
  }

  get ids(): number[] {
    return [...this.members.keys()];
  }
  origin(id: number): string {
    return `http://127.0.0.1:${this.member(id).httpPort}`;
  }

  member(id: number): Member {
    const m = this.members.get(id);
    if (!m) throw new Error(`no member ${id}`);
    return m;
  }

  /** Whether member `id`'s process is alive (paused counts as alive). */
  running(id: number): boolean {
    const c = this.member(id).child;
    return c !== undefined && c.exitCode === null && c.signalCode === null;
  }

  /** Members whose process runs and is not paused. */
  get up(): number[] {
    return this.ids.filter((id) => this.running(id) && !this.member(id).paused);
  }

  /**
   * tickraft-kv's command line for member `id`: its own real port, every other member through a
   * proxy. The election timeout range is wide on purpose: a majority elects near its low end
   * (the first of four timers), while a cut-off leader keeps believing it leads until
   * check-quorum, which runs on the high end. That leaves a stale leader up for a second or
   * more while the new one serves writes: the window in which a read that skipped the read
   * index would be caught.
   */
  args(id: number): string[] {
    const m = this.member(id);
    const peers = this.ids.map((j) => `${j}=127.0.0.1:${j === id ? m.raftPort : this.net.portFor(id, j)}`).join(',');
    const http = this.ids.map((j) => `${j}=127.0.0.1:${this.member(j).httpPort}`).join(',');
    return [
      '--id',
      String(id),
      '--data',
      m.dataDir,
      '--peers',
      peers,
      '--http',
      http,
      '--secret',
      this.secret,
      '--heartbeat',
      '50',
      '--election',
      '300-2000',
      '--timeout',
      '3000',
      ...this.o.args,
    ];
  }

  start(): void {
    for (const id of this.ids) this.spawn(id);
  }

  /** Starts member `id` (again: same ports, same data directory). */
  spawn(id: number): void {
    const m = this.member(id);
    if (this.running(id)) throw new Error(`member ${id} is running`);
    const child = spawn(process.execPath, [...this.o.nodeArgs, this.o.serverJs, ...this.args(id)], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...m.env },
    });
    m.child = child;
    m.paused = false;
    m.lastExit = undefined;
    const keep = (chunk: Buffer): void => {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (!line) continue;
        m.log.push(line);
        if (line.includes('cut a torn tail')) m.tornTails++;
      }
      if (m.log.length > LOG_LINES) m.log.splice(0, m.log.length - LOG_LINES);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    m.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        m.lastExit = code !== null ? `exit ${code}` : `signal ${signal}`;
        m.log.push(`[suite] process ${child.pid} ended: ${m.lastExit}`);
        resolve(code);
      }),
    );
  }

  /** Sends `signal` (SIGKILL by default) and waits for the process to end. */
  async kill(id: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const m = this.member(id);
    if (!this.running(id)) return;
    m.log.push(`[suite] ${signal}`);
    m.child!.kill(signal);
    if (m.paused && signal !== 'SIGKILL') m.child!.kill('SIGCONT');
    const timer = setTimeout(() => m.child?.kill('SIGKILL'), 10_000);
    try {
      await m.exited;
    } finally {
      clearTimeout(timer);
      m.paused = false;
    }
  }

  /** SIGSTOP: the process freezes with its sockets open, as in a long GC pause or a VM stall. */
  pause(id: number): void {
    const m = this.member(id);
    if (!this.running(id) || m.paused) return;
    m.log.push('[suite] SIGSTOP');
    m.child!.kill('SIGSTOP');
    m.paused = true;
  }

  resume(id: number): void {
    const m = this.member(id);
    if (!this.running(id) || !m.paused) return;
    m.log.push('[suite] SIGCONT');
    m.child!.kill('SIGCONT');
    m.paused = false;
  }

  /** `GET /status` of member `id`, or undefined if it does not answer in time. */
  async status(id: number, timeout = 1500): Promise<NodeStatus | undefined> {
    if (!this.running(id) || this.member(id).paused) return undefined;
    try {
      const a = await httpRequest(`${this.origin(id)}/status`, { timeout, agent: this.agent });
      return a.status === 200 ? (JSON.parse(a.body) as NodeStatus) : undefined;
    } catch {
      return undefined;
    }
  }

  /** `GET /debug/dump` of member `id`: its local state. */
  async dump(id: number): Promise<NodeDump> {
    const a = await httpRequest(`${this.origin(id)}/debug/dump`, { timeout: 5000, agent: this.agent });
    if (a.status !== 200) throw new Error(`dump of ${id}: HTTP ${a.status}`);
    return JSON.parse(a.body) as NodeDump;
  }

  /** The leader with the highest term among the members that answer, if any. */
  async leader(): Promise<number | undefined> {
    const all = await Promise.all(this.up.map((id) => this.status(id)));
    let best: { id: number; term: number } | undefined;
    for (const s of all) {
      const st = s?.status;
      if (st?.role === 'leader' && (!best || st.term > best.term)) best = { id: st.id, term: st.term };
    }
    return best?.id;
  }

  /**
   * Sends a leader-only request (POST /members, DELETE /members/<id>, POST /transfer/<id>) to
   * the leader, retrying on 307, 409, 503, 504 and dead connections until 2xx or `timeout` ms.
   * Returns the last answer or error text when it never succeeded.
   */
  async leaderRequest(
    method: string,
    path: string,
    body: string | undefined,
    timeout: number,
  ): Promise<{ ok: boolean; last: string }> {
    const end = Date.now() + timeout;
    let last = 'no leader';
    while (Date.now() < end) {
      const leader = await this.leader();
      if (leader === undefined) {
        await sleep(50);
        continue;
      }
      let a: HttpAnswer;
      try {
        a = await httpRequest(`${this.origin(leader)}${path}`, {
          method,
          body,
          agent: this.agent,
          timeout: Math.max(500, Math.min(10_000, end - Date.now())),
          headers: body ? { 'Content-Type': 'application/json' } : {},
        });
      } catch (error) {
        last = (error as Error).message;
        await sleep(50);
        continue;
      }
      if (a.status >= 200 && a.status < 300) return { ok: true, last: a.body.trim() };
      last = `HTTP ${a.status} ${a.body.trim()}`;
      if (![307, 409, 503, 504].includes(a.status)) return { ok: false, last };
      await sleep(50);
    }
    return { ok: false, last };
  }

  /** The last lines member `id` printed. */
  logTail(id: number, lines = 40): string {
    return this.member(id).log.slice(-lines).join('\n');
  }

  /** Synchronous last resort (process 'exit'): SIGKILL every member. */
  killAllNow(): void {
    for (const id of this.ids) if (this.running(id)) this.member(id).child!.kill('SIGKILL');
  }

  /** Kills every member, closes the proxies and the agent. */
  async destroy(): Promise<void> {
    await Promise.all(this.ids.map((id) => this.kill(id)));
    await this.net.close();
    this.agent.destroy();
  }
}
