/**
 * The multi-raft figures (issue 14), `npm run bench -- --groups [--json FILE]`: three RaftHosts
 * over TcpHostNetwork on localhost, each on a SharedLog (fsync on) in its own directory, ALL IN
 * THIS ONE PROCESS (not three processes yet): aggregate durable commits per second with 1,024
 * proposals in flight in total over 1, 8 and 64 groups; then 1,000 idle groups per host: CPU and
 * envelopes per second once they have quiesced, and RSS per idle group. Prints and asserts nothing
 * about timings; fails only if something breaks.
 */
import { rm } from 'node:fs/promises';
import { SharedLog } from '../../src/file.js';
import type { StateMachine } from '../../src/index.js';
import { RaftHost } from '../../src/multi.js';
import { TcpHostNetwork } from '../../src/tcp.js';
import { benchTemp } from './disk.js';

interface Cmd {
  readonly id: string;
}

/** A group member: counts what it applied; on the leader, every applied proposal of its own is replaced by a new one. */
class Loader implements StateMachine<Cmd> {
  pending: Cmd[] = [];
  applied = 0;
  private seq = 0;
  constructor(private readonly tag: string) {}
  getPendingTransitions(): Cmd[] {
    const p = this.pending;
    this.pending = [];
    return p;
  }
  registerTransitionState(): void {}
  applyTransition(t: Cmd): void {
    if (t.id === 'noop') return;
    this.applied++;
    if (t.id.startsWith(this.tag)) this.propose(1);
  }
  propose(n: number): void {
    for (let i = 0; i < n; i++) this.pending.push({ id: `${this.tag}:${++this.seq}` });
  }
}

interface Cluster {
  hosts: RaftHost<Cmd>[];
  nets: TcpHostNetwork<Cmd>[];
  logs: SharedLog<Cmd, unknown>[];
  loaders: Map<string, Loader>;
  stop(): Promise<void>;
}

const SECRET = 'multi-raft bench secret, 32 bytes';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function cluster(groups: number, electionTimeoutRange: [number, number], heartbeatTimeout: number) {
  const ids = [1, 2, 3];
  const dirs = ids.map((id) => benchTemp(`tickraft-groups-${id}-`));
  const nets = ids.map((id) => new TcpHostNetwork<Cmd>({ id, listen: { host: '127.0.0.1', port: 0 }, secret: SECRET }));
  await Promise.all(nets.map((n) => n.tcp.listen()));
  for (const a of nets)
    for (const b of nets) if (a !== b) a.tcp.addPeer(b.tcp.id, { host: '127.0.0.1', port: b.tcp.port });
  const logs = dirs.map((d) => new SharedLog<Cmd, unknown>(d));
  await Promise.all(logs.map((l) => l.open()));
  const loaders = new Map<string, Loader>();
  const hosts = ids.map((id, i) => {
    const host = new RaftHost<Cmd>({ id, network: nets[i]!, livenessInterval: 100, suspectAfter: 400 });
    for (let g = 1; g <= groups; g++) {
      const loader = new Loader(`${g}/${id}`);
      loaders.set(`${g}/${id}`, loader);
      host.createGroup(g, {
        members: ids,
        stateMachine: loader,
        noopTransition: { id: 'noop' },
        heartbeatTimeout,
        electionTimeoutRange,
        storage: logs[i]!.group(g),
      });
    }
    return host;
  });
  const running = hosts.map((h) => h.start());
  const c: Cluster = {
    hosts,
    nets,
    logs,
    loaders,
    stop: async () => {
      await Promise.all(hosts.map((h) => h.stop()));
      await Promise.all(nets.map((n) => n.tcp.close()));
      await Promise.all(running);
      await Promise.all(logs.map((l) => l.close()));
      await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
    },
  };
  return c;
}

const leaderOf = (c: Cluster, g: number) => c.hosts.find((h) => h.group(g)!.status.role === 'leader');

async function untilLeaders(c: Cluster, groups: number): Promise<void> {
  for (const end = Date.now() + 60_000; Date.now() < end; await sleep(20)) {
    let all = true;
    for (let g = 1; g <= groups && all; g++) all = leaderOf(c, g) !== undefined;
    if (all) return;
  }
  throw new Error(`no leader in every one of ${groups} groups within 60 s`);
}

/** Aggregate commits per second over `ms`, 1,024 proposals in flight in total. */
async function throughput(groups: number, ms: number): Promise<{ commitsPerSec: number; leadersPerHost: number[] }> {
  const c = await cluster(groups, [300, 600], 50);
  try {
    await untilLeaders(c, groups);
    const count = () => {
      let n = 0;
      for (let g = 1; g <= groups; g++) n += c.loaders.get(`${g}/${leaderOf(c, g)?.id ?? 1}`)!.applied;
      return n;
    };
    for (let g = 1; g <= groups; g++) {
      const h = leaderOf(c, g)!;
      c.loaders.get(`${g}/${h.id}`)!.propose(Math.ceil(1024 / groups));
      h.group(g)!.wake();
    }
    await sleep(Math.min(1000, ms / 3)); // warm-up
    const [n0, t0] = [count(), Date.now()];
    await sleep(ms);
    const commitsPerSec = ((count() - n0) * 1000) / (Date.now() - t0);
    const leadersPerHost = c.hosts.map((h) => h.groupIds().filter((g) => h.group(g)!.status.role === 'leader').length);
    return { commitsPerSec, leadersPerHost };
  } finally {
    await c.stop();
  }
}

/** 1,000 idle groups per host: once quiescent, CPU (per host: the process's divided by 3) and envelopes per second. */
async function idle(groups: number, ms: number) {
  global.gc?.();
  const { rss: rss0, heapUsed: heap0 } = process.memoryUsage();
  const c = await cluster(groups, [1000, 2000], 200);
  try {
    await untilLeaders(c, groups);
    const quiet = () => c.hosts.every((h) => h.groupIds().every((g) => h.isQuiescent(g)));
    for (const end = Date.now() + 60_000; !quiet() && Date.now() < end;) await sleep(50);
    global.gc?.();
    const rssBytesPerIdleGroup = (process.memoryUsage().rss - rss0) / (3 * groups);
    const heapBytesPerIdleGroup = (process.memoryUsage().heapUsed - heap0) / (3 * groups);
    const envelopes = () => c.hosts.reduce((n, h) => n + h.stats.envelopesSent, 0);
    const [cpu0, e0, t0] = [process.cpuUsage(), envelopes(), Date.now()];
    await sleep(ms);
    const cpu = process.cpuUsage(cpu0);
    const elapsed = Date.now() - t0;
    return {
      quiescent: quiet(),
      cpuPercentPerProcess: ((cpu.user + cpu.system) / 1000 / elapsed / 3) * 100,
      messagesPerSec: ((envelopes() - e0) * 1000) / elapsed,
      rssBytesPerIdleGroup,
      heapBytesPerIdleGroup,
    };
  } finally {
    await c.stop();
  }
}

/** Runs the multi-raft figures; `quick` shortens every window. */
export async function runGroups(quick: boolean, log: (s: string) => void) {
  const ms = quick ? 1000 : 5000;
  const out: Record<string, unknown> = {};
  // Idle first: its RSS is measured before the throughput runs have grown the heap.
  log('  groups: 1,000 idle groups per host…');
  const i = await idle(1000, quick ? 2000 : 30_000);
  out.idle1000 = {
    cpuPercentPerProcess: i.cpuPercentPerProcess,
    messagesPerSec: i.messagesPerSec,
    quiescent: i.quiescent,
  };
  out.rssBytesPerIdleGroup = i.rssBytesPerIdleGroup;
  out.heapBytesPerIdleGroup = i.heapBytesPerIdleGroup;
  log(
    `    ${i.cpuPercentPerProcess.toFixed(2)}% CPU per host, ${i.messagesPerSec.toFixed(0)} envelopes/s in all, ` +
      `${(i.rssBytesPerIdleGroup / 1024).toFixed(1)} KiB RSS and ${(i.heapBytesPerIdleGroup / 1024).toFixed(1)} KiB ` +
      `heap per idle group (quiescent: ${i.quiescent})`,
  );
  for (const n of [1, 8, 64]) {
    log(`  groups: ${n} group(s), 1,024 in flight, fsync on…`);
    const r = await throughput(n, ms);
    out[`g${n}`] = r;
    log(`    ${r.commitsPerSec.toFixed(0)} commits/s; leaders per host ${r.leadersPerHost.join('/')}`);
  }
  log('  groups: failover of quiescent groups when a host dies…');
  Object.assign(out, await runFailovers(quick ? 1 : 5, log));
  return {
    ...out,
    setup: '3 hosts in one process over TcpHostNetwork (localhost), one SharedLog each (fsync on)',
  };
}

/**
 * Failover: once every group is quiescent, the host leading group 1 dies (its connections and loop stop at once);
 * for each group it led, the ms until another host leads it and has committed a write there.
 */
async function failover(groups: number): Promise<{ medianMs: number; groups: number }> {
  const c = await cluster(groups, [300, 600], 50);
  try {
    await untilLeaders(c, groups);
    const quiet = () => c.hosts.every((h) => h.groupIds().every((g) => h.isQuiescent(g)));
    for (const end = Date.now() + 30_000; !quiet() && Date.now() < end;) await sleep(20);
    const victim = leaderOf(c, 1)!; // so that the one-group run has a group to fail over
    const led = victim.groupIds().filter((g) => victim.group(g)!.status.role === 'leader');
    const t0 = Date.now();
    await c.nets[victim.id - 1]!.tcp.close();
    await victim.stop();
    const times = new Map<number, number>();
    const writing = new Map<number, { loader: Loader; target: number }>();
    for (const end = Date.now() + 30_000; times.size < led.length && Date.now() < end; await sleep(2)) {
      for (const g of led) {
        if (times.has(g)) continue;
        const w = writing.get(g);
        if (w) {
          if (w.loader.applied >= w.target) times.set(g, Date.now() - t0);
          continue;
        }
        const h = c.hosts.find((x) => x !== victim && x.group(g)!.status.role === 'leader');
        if (!h) continue;
        const loader = c.loaders.get(`${g}/${h.id}`)!;
        writing.set(g, { loader, target: loader.applied + 1 });
        loader.pending.push({ id: `failover-${g}` });
        h.group(g)!.wake();
      }
    }
    const sorted = [...times.values()].sort((a, b) => a - b);
    return { medianMs: sorted[Math.floor(sorted.length / 2)] ?? NaN, groups: led.length };
  } finally {
    await c.stop();
  }
}

/** Failover of one group and of 64 groups, each run `runs` times: the median over every affected group. */
export async function runFailovers(runs: number, log: (s: string) => void) {
  const out: Record<string, { medianMs: number; groups: number }> = {};
  for (const n of [1, 64]) {
    const medians: number[] = [];
    let affected = 0;
    for (let i = 0; i < runs; i++) {
      const r = await failover(n);
      medians.push(r.medianMs);
      affected += r.groups;
    }
    medians.sort((a, b) => a - b);
    out[`failover${n}`] = { medianMs: medians[Math.floor(medians.length / 2)]!, groups: affected };
    log(
      `    failover, ${n} group(s): median ${out[`failover${n}`]!.medianMs} ms (${affected} groups led by the victim)`,
    );
  }
  return out;
}
