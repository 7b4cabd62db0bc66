// Runs a cluster of key-value servers as child processes on loopback: free ports, a temp data
// directory, spawn / kill / restart, and polling of their /status. Used by the TCP demo and
// the integration test.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { httpRequest, sleep, type HttpAnswer } from './client.js';

/** `n` distinct free TCP ports on 127.0.0.1: all bound to port 0 at once, then released. */
export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
          const s = createServer();
          s.once('error', reject);
          s.listen(0, '127.0.0.1', () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

/** Polls `probe` every `interval` ms until it returns a value; rejects after `timeout` ms. */
export async function waitFor<R>(
  what: string,
  probe: () => Promise<R | undefined> | R | undefined,
  timeout = 20_000,
  interval = 10,
): Promise<R> {
  const end = Date.now() + timeout;
  for (;;) {
    const r = await probe();
    if (r !== undefined) return r;
    if (Date.now() > end) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await sleep(interval);
  }
}

/** What `GET /status` answers (the parts used here). */
export interface NodeStatus {
  status: {
    id: number;
    role: 'follower' | 'candidate' | 'leader';
    term: number;
    leaderId: number | null;
    commitIndex: number;
    lastApplied: number;
    lastLogIndex: number;
  };
  metrics: Record<string, number>;
  leader: { id: number; http: string } | null;
  /** The voting members this replica's configuration lists. */
  membership: number[] | null;
}

/** What `GET /debug/dump` answers. */
export interface NodeDump {
  id: number;
  appliedIndex: number;
  lastApplied: number;
  snapshotsInstalled: number;
  data: Record<string, string>;
}

interface Member {
  id: number;
  raftPort: number;
  httpPort: number;
  join: boolean;
  child: ChildProcess | undefined;
  exited: Promise<number | null> | undefined;
  log: string[];
}

/** A cluster of `tickraft-kv` processes. Call {@link KvProcesses.create}, then {@link start}. */
export class KvProcesses {
  readonly members = new Map<number, Member>();
  readonly secret = randomBytes(24).toString('hex');
  /** The command line each member was first started with. */
  private readonly started = new Map<number, string[]>();

  private constructor(
    readonly serverJs: string,
    readonly dir: string,
    private readonly extraArgs: string[],
  ) {}

  /** Picks ports and a fresh temp directory; starts nothing. */
  static async create(serverJs: string, ids = [1, 2, 3], extraArgs: string[] = []): Promise<KvProcesses> {
    const dir = await mkdtemp(join(tmpdir(), 'tickraft-kv-'));
    const c = new KvProcesses(serverJs, dir, extraArgs);
    const ports = await freePorts(ids.length * 2);
    ids.forEach((id, i) =>
      c.members.set(id, {
        id,
        raftPort: ports[2 * i]!,
        httpPort: ports[2 * i + 1]!,
        join: false,
        child: undefined,
        exited: undefined,
        log: [],
      }),
    );
    return c;
  }

  /**
   * Picks ports for a new member `id` that will join the running cluster; starts nothing. Its
   * command line ({@link args}) lists every member known here plus itself, with `--join`.
   */
  async prepareJoin(id: number): Promise<void> {
    if (this.members.has(id)) throw new Error(`member ${id} exists`);
    const [raftPort, httpPort] = await freePorts(2);
    this.members.set(id, {
      id,
      raftPort: raftPort!,
      httpPort: httpPort!,
      join: true,
      child: undefined,
      exited: undefined,
      log: [],
    });
  }

  /** Forgets member `id` (after it was removed and stopped): later command lines and origins leave it out. */
  forget(id: number): void {
    const m = this.member(id);
    if (m.child && m.child.exitCode === null && m.child.signalCode === null) throw new Error(`member ${id} is running`);
    this.members.delete(id);
  }

  /** The JSON body of `POST /members` for member `id`. */
  joinBody(id: number): string {
    const m = this.member(id);
    return JSON.stringify({ id, raft: `127.0.0.1:${m.raftPort}`, http: `127.0.0.1:${m.httpPort}` });
  }

  /**
   * Sends a leader-only request (POST /members, DELETE /members/<id>, POST /transfer/<id>) to the
   * leader among `among`, retrying on 307, 409, 503, 504 and dead connections until a 2xx or
   * `timeout` ms; throws on any other answer.
   */
  async leaderRequest(
    method: string,
    path: string,
    body?: string,
    among = this.ids,
    timeout = 20_000,
  ): Promise<HttpAnswer> {
    const end = Date.now() + timeout;
    let last = 'no attempt';
    while (Date.now() < end) {
      let leader: number;
      try {
        leader = (await this.waitForLeader(among, Math.max(1, end - Date.now()))).id;
      } catch {
        break;
      }
      let a: HttpAnswer;
      try {
        a = await httpRequest(`${this.origin(leader)}${path}`, {
          method,
          body,
          headers: body ? { 'Content-Type': 'application/json' } : {},
          timeout: 10_000,
        });
      } catch (error) {
        last = (error as Error).message;
        await sleep(20);
        continue;
      }
      if (a.status >= 200 && a.status < 300) return a;
      last = `HTTP ${a.status} ${a.body.trim()}`;
      if (![307, 409, 503, 504].includes(a.status)) throw new Error(`${method} ${path}: ${last}`);
      await sleep(a.status === 504 ? 0 : 50);
    }
    throw new Error(`${method} ${path}: not done within ${timeout} ms (last: ${last})`);
  }

  get ids(): number[] {
    return [...this.members.keys()];
  }
  origin(id: number): string {
    return `http://127.0.0.1:${this.member(id).httpPort}`;
  }
  get origins(): string[] {
    return this.ids.map((id) => this.origin(id));
  }
  dataDir(id: number): string {
    return join(this.dir, String(id));
  }

  /** The server's command line for member `id`. */
  args(id: number): string[] {
    const list = (port: (m: Member) => number): string =>
      [...this.members.values()].map((m) => `${m.id}=127.0.0.1:${port(m)}`).join(',');
    return [
      '--id',
      String(id),
      '--data',
      this.dataDir(id),
      '--peers',
      list((m) => m.raftPort),
      '--http',
      list((m) => m.httpPort),
      '--secret',
      this.secret,
      ...(this.member(id).join ? ['--join'] : []),
      ...this.extraArgs,
    ];
  }

  /**
   * Spawns member `id` (again, after a kill: same ports, same data directory) with the current
   * command line ({@link args}), or with `args` (e.g. {@link startedArgs}: as first started).
   */
  spawn(id: number, args = this.args(id)): void {
    const m = this.member(id);
    if (m.child && m.child.exitCode === null && m.child.signalCode === null) throw new Error(`member ${id} is running`);
    if (!this.started.has(id)) this.started.set(id, args);
    const child = spawn(process.execPath, [this.serverJs, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    m.child = child;
    const keep = (chunk: Buffer): void => {
      for (const line of chunk.toString('utf8').split('\n')) if (line) m.log.push(line);
      if (m.log.length > 200) m.log.splice(0, m.log.length - 200);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    m.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  }

  /** The command line member `id` was first started with: the cluster as it was then. */
  startedArgs(id: number): string[] {
    const started = this.started.get(id);
    if (!started) throw new Error(`member ${id} was never started`);
    return started;
  }

  start(): void {
    for (const id of this.ids) this.spawn(id);
  }

  /** Resolves with member `id`'s exit code once it exits (null if it was never started). */
  exitCode(id: number): Promise<number | null> {
    return this.member(id).exited ?? Promise.resolve(null);
  }

  /** Sends `signal` and waits for the process to exit; resolves with its exit code. */
  async kill(id: number, signal: NodeJS.Signals = 'SIGKILL', timeout = 10_000): Promise<number | null> {
    const m = this.member(id);
    if (!m.child || !m.exited) return null;
    if (m.child.exitCode === null && m.child.signalCode === null) m.child.kill(signal);
    const timer = setTimeout(() => m.child?.kill('SIGKILL'), timeout);
    try {
      return await m.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Stops every member gracefully (SIGTERM; SIGKILL after 5 s); resolves with their exit codes. */
  async stopAll(): Promise<Map<number, number | null>> {
    const codes = await Promise.all(this.ids.map(async (id) => [id, await this.kill(id, 'SIGTERM', 5000)] as const));
    return new Map(codes);
  }

  /** Synchronous last resort (for process 'exit' handlers): SIGKILL whatever still runs. */
  killAllNow(): void {
    for (const m of this.members.values())
      if (m.child && m.child.exitCode === null && m.child.signalCode === null) m.child.kill('SIGKILL');
  }

  /** Kills every member and removes the temp directory. */
  async destroy(): Promise<void> {
    await Promise.all(this.ids.map((id) => this.kill(id, 'SIGKILL')));
    await rm(this.dir, { recursive: true, force: true });
  }

  /** `GET /status` of member `id`, or undefined if it does not answer (`S`: a sharded server's, say). */
  async status<S = NodeStatus>(id: number): Promise<S | undefined> {
    try {
      const a = await httpRequest(`${this.origin(id)}/status`, { timeout: 2000 });
      return a.status === 200 ? (JSON.parse(a.body) as S) : undefined;
    } catch {
      return undefined;
    }
  }

  /** `GET /debug/dump` of member `id` (`D`: a sharded server's, say). */
  async dump<D = NodeDump>(id: number): Promise<D> {
    const a = await httpRequest(`${this.origin(id)}/debug/dump`, { timeout: 5000 });
    if (a.status !== 200) throw new Error(`dump of ${id}: HTTP ${a.status}`);
    return JSON.parse(a.body) as D;
  }

  /** The leader, once a member among `among` reports itself leader (the highest term wins). */
  waitForLeader(among = this.ids, timeout = 20_000, interval = 10): Promise<{ id: number; term: number }> {
    return waitFor(
      'a leader',
      async () => {
        const all = await Promise.all(among.map((id) => this.status(id)));
        let best: { id: number; term: number } | undefined;
        for (const s of all)
          if (s?.status.role === 'leader' && (!best || s.status.term > best.term))
            best = { id: s.status.id, term: s.status.term };
        return best;
      },
      timeout,
      interval,
    );
  }

  /** The last lines member `id` printed, for diagnosing a failure. */
  logTail(id: number, lines = 30): string {
    return this.member(id).log.slice(-lines).join('\n');
  }

  private member(id: number): Member {
    const m = this.members.get(id);
    if (!m) throw new Error(`no member ${id}`);
    return m;
  }
}
