/**
 * One process of the multi-raft bench (groups.ts, issue 14): one RaftHost over TcpHostNetwork and
 * one SharedLog (fsync on) in its own directory, hosting its member of every group. Forked by the
 * bench with an IPC channel; the parent drives it with requests (JSON objects with a `rid`) and
 * it answers each with the same `rid`. The load runs inside (each leader's state machine proposes
 * a new entry for every one of its own it applies), so what is measured is the library, not IPC.
 *
 * Run it with `--expose-gc`: the memory figures are taken after a full collection.
 */
import { rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { writeHeapSnapshot } from 'node:v8';
import { SharedLog } from '../../src/file.js';
import type { StateMachine } from '../../src/index.js';
import { RaftHost } from '../../src/multi.js';
import { TcpHostNetwork } from '../../src/tcp.js';

/** What the parent passes as argv[2] (JSON). */
export interface GroupWorkerConfig {
  id: number;
  ports: Record<number, number>;
  secret: string;
  dir: string;
  groups: number;
  heartbeat: number;
  election: [number, number];
  livenessInterval: number;
  suspectAfter: number;
}

/** What a `stats` request answers. */
export interface WorkerStats {
  /** Own proposals committed and applied here (on the leader that proposed them). */
  committed: number;
  /** process.cpuUsage() in µs, user + system. */
  cpuUs: number;
  envelopesSent: number;
  messagesSent: number;
  quiescent: number;
  /** The SharedLog's fdatasyncs and group saves, and the host's rounds, so far. */
  syncs: number;
  saves: number;
  ticks: number;
  /** Groups this process leads. */
  leading: number[];
  rss: number;
  heapUsed: number;
  /** The V8 heap's pages, used or not: with rss, it shows how much of the RSS is heap. */
  heapTotal: number;
  /** Memory of Buffers and other objects outside the V8 heap. */
  external: number;
  /** Wall-clock ms when taken. */
  at: number;
}

export type GroupWorkerRequest =
  | { rid: number; type: 'stats'; gc?: boolean }
  | { rid: number; type: 'place' }
  | { rid: number; type: 'grow'; to: number }
  | { rid: number; type: 'load'; perGroup: number }
  | { rid: number; type: 'watch'; groups: number[] }
  | { rid: number; type: 'heapSnapshot'; file: string }
  | { rid: number; type: 'stop' };

interface Cmd {
  readonly id: string;
}

/** The process a group's leadership is placed on: groups 1, 4, 7… on 1, 2, 5, 8… on 2, and so on. */
export const preferredLeader = (g: number): number => 1 + ((g - 1) % 3);

/** A group member: counts what it applied of its own; a leader under load replaces each with a new one. */
class Loader implements StateMachine<Cmd> {
  pending: Cmd[] = [];
  committed = 0;
  loaded = false;
  /** Set while a failover write is awaited: called when it is applied. */
  onFailoverWrite: (() => void) | undefined;
  private seq = 0;
  constructor(readonly tag: string) {}
  getPendingTransitions(): Cmd[] {
    const p = this.pending;
    if (p.length > 0) this.pending = [];
    return p;
  }
  registerTransitionState(): void {}
  applyTransition(t: Cmd): void {
    if (t.id === 'noop') return;
    if (t.id === `fo/${this.tag}`) this.onFailoverWrite?.();
    if (!t.id.startsWith(`${this.tag}:`)) return;
    this.committed++;
    if (this.loaded) this.propose(1);
  }
  propose(n: number): void {
    for (let i = 0; i < n; i++) this.pending.push({ id: `${this.tag}:${++this.seq}` });
  }
}

const send = (m: unknown): void => {
  process.send?.(m);
};
async function main(): Promise<void> {
  // If the parent goes away, so do we.
  process.on('disconnect', () => process.exit(0));
  const cfg = JSON.parse(process.argv[2]!) as GroupWorkerConfig;
  const network = new TcpHostNetwork<Cmd>({
    id: cfg.id,
    listen: { host: '127.0.0.1', port: cfg.ports[cfg.id]! },
    secret: cfg.secret,
  });
  await network.tcp.listen();
  for (const [peer, port] of Object.entries(cfg.ports))
    if (Number(peer) !== cfg.id) network.tcp.addPeer(Number(peer), { host: '127.0.0.1', port });
  const log = new SharedLog<Cmd, unknown>(cfg.dir);
  await log.open();
  global.gc?.();
  const base = process.memoryUsage();
  const host = new RaftHost<Cmd>({
    id: cfg.id,
    network,
    livenessInterval: cfg.livenessInterval,
    suspectAfter: cfg.suspectAfter,
  });
  const loaders: Loader[] = [];
  const members = Object.keys(cfg.ports).map(Number);
  /** Creates groups up to `n` (numbered from 1): a process hosting thousands adds them in steps (see groups.ts). */
  const grow = (n: number): void => {
    for (let g = loaders.length || 1; g <= n; g++) {
      const loader = new Loader(`${g}/${cfg.id}`);
      loaders[g] = loader;
      host.createGroup(g, {
        members,
        stateMachine: loader,
        noopTransition: { id: 'noop' },
        heartbeatTimeout: cfg.heartbeat,
        electionTimeoutRange: cfg.election,
        storage: log.group(g),
        // BENCH_GROUPS_SEND_BEFORE_SAVE=1: the opt-in of dissertation §10.2.1, to see what the fsync round costs.
        leaderSendsBeforeSave: process.env.BENCH_GROUPS_SEND_BEFORE_SAVE === '1',
      });
    }
  };
  grow(cfg.groups);
  const running = host.start();
  const leading = () => host.groupIds().filter((g) => host.group(g)!.status.role === 'leader');

  const answer = async (req: GroupWorkerRequest): Promise<unknown> => {
    switch (req.type) {
      case 'stats': {
        if (req.gc) for (let i = 0; i < 3; i++) global.gc?.();
        const cpu = process.cpuUsage();
        const s = host.stats;
        const m = process.memoryUsage();
        return {
          committed: loaders.reduce((n, l) => n + (l?.committed ?? 0), 0),
          cpuUs: cpu.user + cpu.system,
          envelopesSent: s.envelopesSent,
          messagesSent: s.messagesSent,
          quiescent: host.groupIds().filter((g) => host.isQuiescent(g)).length,
          leading: leading(),
          syncs: log.stats.syncs,
          saves: log.stats.saves,
          ticks: s.ticks,
          rss: m.rss,
          heapUsed: m.heapUsed,
          heapTotal: m.heapTotal,
          external: m.external,
          at: Date.now(),
          base: { rss: base.rss, heapUsed: base.heapUsed, heapTotal: base.heapTotal, external: base.external },
        };
      }
      case 'place': {
        // Hands each group it leads to the process it is placed on, so each process leads about a third.
        let started = 0;
        for (const g of leading()) {
          const to = preferredLeader(g);
          if (to === cfg.id || !members.includes(to)) continue;
          host
            .group(g)!
            .transferLeadership(to)
            .catch(() => undefined); // the parent asks again until placed
          started++;
        }
        return { started };
      }
      case 'grow':
        grow(req.to);
        return {};
      case 'load': {
        for (const g of leading()) {
          loaders[g]!.loaded = true;
          loaders[g]!.propose(req.perGroup);
          host.group(g)!.wake();
        }
        return {};
      }
      case 'watch': {
        // Failover: as soon as this process leads a watched group, it writes there; the event says when that
        // write was applied (wall clock, comparable with the parent's time of the kill).
        const waiting = new Set(req.groups);
        const timer = setInterval(() => {
          for (const g of waiting) {
            if (host.group(g)?.status.role !== 'leader') continue;
            waiting.delete(g);
            const loader = loaders[g]!;
            loader.onFailoverWrite = () => {
              loader.onFailoverWrite = undefined;
              send({ type: 'failedOver', group: g, at: Date.now() });
            };
            loader.pending.push({ id: `fo/${loader.tag}` });
            host.group(g)!.wake();
          }
          if (waiting.size === 0) clearInterval(timer);
        }, 1);
        return {};
      }
      case 'heapSnapshot':
        global.gc?.();
        return { file: writeHeapSnapshot(req.file) };
      case 'stop':
        await host.stop();
        await network.tcp.close();
        await running;
        await log.close();
        await rm(cfg.dir, { recursive: true, force: true });
        setImmediate(() => process.disconnect?.());
        return {};
    }
  };
  process.on('message', (raw) => {
    const req = raw as GroupWorkerRequest;
    answer(req).then(
      (r) => send({ ...(r as object), rid: req.rid }),
      (e: unknown) => send({ rid: req.rid, error: String(e) }),
    );
  });
  send({ type: 'ready' });
}

// Imported by groups.ts for its types and placement: only a forked worker runs.
if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
