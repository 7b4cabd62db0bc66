// The nemeses: each one is a loop of faults the run's seed chooses, run until the fault phase
// ends. After it the runner heals everything the generic way (links restored, paused members
// resumed, dead members restarted); a nemesis with more to undo does it in its own `heal`.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sleep } from '../../docs/examples/kv/client.js';
import type { FaultCluster } from './cluster.js';
import { losePower } from './power-loss.js';
import type { Rng } from './proxy.js';

/** What a nemesis works with. */
export interface RunContext {
  cluster: FaultCluster;
  rng: Rng;
  /** Ms since the run began (the history's clock). */
  now(): number;
  /** When (on {@link now}'s clock) the fault phase ends. */
  until: number;
  /** Writes a line of the run's story (shown with --verbose, and on failure). */
  log(what: string): void;
  /** Counters for the report (kills, pauses, …). */
  stats: Record<string, number>;
  /** Failures the nemesis found itself (e.g. a member that did not stop on a full disk). */
  failures: string[];
}

/** One nemesis. */
export interface Nemesis {
  name: string;
  /** One line: what it does. */
  about: string;
  /** Extra tickraft-kv flags for this run. */
  args?: string[];
  /** Before the members start (e.g. mount a small disk). */
  prepare?(ctx: RunContext): Promise<void>;
  /** The faults, until `ctx.until`. */
  run(ctx: RunContext): Promise<void>;
  /** Undo what the generic heal cannot (before it runs). */
  heal?(ctx: RunContext): Promise<void>;
  /** Extra checks once the cluster has converged. */
  check?(ctx: RunContext): Promise<void>;
  /** After the run (e.g. unmount). */
  cleanup?(ctx: RunContext): Promise<void>;
}

// ---- helpers ----

const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)]!;
const between = (rng: Rng, lo: number, hi: number): number => lo + Math.floor(rng() * (hi - lo + 1));

/** Fisher–Yates with the run's rng. */
function shuffle<T>(rng: Rng, xs: readonly T[]): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

/** Sleeps `ms`, but not past the end of the fault phase. */
async function hold(ctx: RunContext, ms: number): Promise<void> {
  await sleep(Math.max(0, Math.min(ms, ctx.until - ctx.now())));
}

const more = (ctx: RunContext): boolean => ctx.now() < ctx.until;
const count = (ctx: RunContext, what: string, n = 1): void => {
  ctx.stats[what] = (ctx.stats[what] ?? 0) + n;
};

/** The leader if one is known, else a random member; the seed decides whether to prefer it. */
async function target(ctx: RunContext, preferLeader: number): Promise<number> {
  if (ctx.rng() < preferLeader) {
    const l = await ctx.cluster.leader();
    if (l !== undefined) return l;
  }
  return pick(ctx.rng, ctx.cluster.ids);
}

/** Restarts every member whose process is not running. */
async function restartDead(ctx: RunContext): Promise<void> {
  for (const id of ctx.cluster.ids) if (!ctx.cluster.running(id)) ctx.cluster.spawn(id);
}

// ---- network ----

const partition: Nemesis = {
  name: 'partition',
  about: 'majority/minority splits of the links (the leader on either side), held 1-3 s, healed 0.5-1 s',
  async run(ctx) {
    while (more(ctx)) {
      const leader = await ctx.cluster.leader();
      let order = shuffle(ctx.rng, ctx.cluster.ids);
      // Half the time the leader is put in the minority, where it must stop serving.
      if (leader !== undefined && ctx.rng() < 0.5) order = [leader, ...order.filter((id) => id !== leader)];
      const minority = order.slice(0, 2);
      const majority = order.slice(2);
      ctx.cluster.net.partition([minority, majority]);
      ctx.log(`partition ${minority.join(',')} | ${majority.join(',')} (leader was ${leader ?? 'unknown'})`);
      count(ctx, 'partitions');
      await hold(ctx, between(ctx.rng, 1000, 3000));
      ctx.cluster.net.heal();
      await hold(ctx, between(ctx.rng, 500, 1000));
    }
  },
};

const bridge: Nemesis = {
  name: 'bridge',
  about: 'two sides of two that cannot see each other, and one member that sees both',
  async run(ctx) {
    while (more(ctx)) {
      const [b, ...rest] = shuffle(ctx.rng, ctx.cluster.ids);
      const left = rest.slice(0, 2);
      const right = rest.slice(2);
      ctx.cluster.net.partition([left, right]);
      ctx.log(`bridge ${left.join(',')} <${b}> ${right.join(',')}`);
      count(ctx, 'bridges');
      await hold(ctx, between(ctx.rng, 1500, 3000));
      ctx.cluster.net.heal();
      await hold(ctx, between(ctx.rng, 500, 1000));
    }
  },
};

const isolate: Nemesis = {
  name: 'isolate',
  about: 'one member (the leader 2 times in 3) cut off both ways, or only inbound, or only outbound',
  async run(ctx) {
    while (more(ctx)) {
      const victim = await target(ctx, 0.67);
      const how = pick(ctx.rng, ['both', 'inbound', 'outbound'] as const);
      for (const other of ctx.cluster.ids) {
        if (other === victim) continue;
        if (how !== 'inbound') ctx.cluster.net.setCut(victim, other, true);
        if (how !== 'outbound') ctx.cluster.net.setCut(other, victim, true);
      }
      ctx.log(`isolate ${victim} (${how})`);
      count(ctx, 'isolations');
      await hold(ctx, between(ctx.rng, 1000, 3000));
      ctx.cluster.net.heal();
      await hold(ctx, between(ctx.rng, 500, 1000));
    }
  },
};

const flap: Nemesis = {
  name: 'flap',
  about: 'random directions of random links cut and restored every 50-300 ms, with 0-80 ms delays',
  async run(ctx) {
    const ids = ctx.cluster.ids;
    while (more(ctx)) {
      const from = pick(ctx.rng, ids);
      const to = pick(
        ctx.rng,
        ids.filter((id) => id !== from),
      );
      const r = ctx.rng();
      if (r < 0.45) ctx.cluster.net.setCut(from, to, true);
      else if (r < 0.75) ctx.cluster.net.setCut(from, to, false);
      else ctx.cluster.net.setDelay(from, to, { ms: between(ctx.rng, 0, 80), jitter: between(ctx.rng, 0, 40) });
      count(ctx, 'flips');
      if (ctx.rng() < 0.08) {
        ctx.cluster.net.heal();
        ctx.log('flap: all links healed');
      }
      await hold(ctx, between(ctx.rng, 50, 300));
    }
  },
};

const slow: Nemesis = {
  name: 'delay',
  about: 'every link delayed 20-150 ms (plus jitter), a different amount each way, changed every 1-3 s',
  async run(ctx) {
    const ids = ctx.cluster.ids;
    while (more(ctx)) {
      for (const a of ids)
        for (const b of ids)
          if (a !== b) {
            ctx.cluster.net.setDelay(a, b, { ms: between(ctx.rng, 20, 150), jitter: between(ctx.rng, 0, 50) });
          }
      count(ctx, 'delay changes');
      ctx.log(`delay: ${ctx.cluster.net.describe()}`);
      await hold(ctx, between(ctx.rng, 1000, 3000));
    }
  },
};

// ---- processes ----

const kill: Nemesis = {
  name: 'kill',
  about: 'SIGKILL of 1-2 random members, restarted after 0.3-2 s',
  async run(ctx) {
    while (more(ctx)) {
      const victims = shuffle(ctx.rng, ctx.cluster.ids).slice(0, between(ctx.rng, 1, 2));
      await Promise.all(victims.map((id) => ctx.cluster.kill(id)));
      ctx.log(`kill ${victims.join(',')}`);
      count(ctx, 'kills', victims.length);
      await hold(ctx, between(ctx.rng, 300, 2000));
      await restartDead(ctx);
      await hold(ctx, between(ctx.rng, 500, 1500));
    }
  },
};

const killLeader: Nemesis = {
  name: 'kill-leader',
  about: 'SIGKILL of whoever leads, restarted after 0.3-1.5 s, again as soon as a new leader is up',
  async run(ctx) {
    while (more(ctx)) {
      const leader = await ctx.cluster.leader();
      if (leader === undefined) {
        await hold(ctx, 100);
        continue;
      }
      await ctx.cluster.kill(leader);
      ctx.log(`kill leader ${leader}`);
      count(ctx, 'kills');
      await hold(ctx, between(ctx.rng, 300, 1500));
      await restartDead(ctx);
      await hold(ctx, between(ctx.rng, 300, 1000));
    }
  },
};

const pause: Nemesis = {
  name: 'pause',
  about: 'SIGSTOP of the leader (or a random member) for 1-3 s, longer than the election timeout, then SIGCONT',
  async run(ctx) {
    while (more(ctx)) {
      const victim = await target(ctx, 0.75);
      ctx.cluster.pause(victim);
      ctx.log(`pause ${victim}`);
      count(ctx, 'pauses');
      // Not cut short by the end of the phase: a paused leader must wake while clients still wait on it.
      await sleep(between(ctx.rng, 1000, 3000));
      ctx.cluster.resume(victim);
      ctx.log(`resume ${victim}`);
      await hold(ctx, between(ctx.rng, 500, 1500));
    }
  },
};

const powerLossLayer = fileURLToPath(new URL('./power-loss.js', import.meta.url));
const journal = (ctx: RunContext, id: number): string => `${ctx.cluster.member(id).dataDir}.journal`;

const killAll: Nemesis = {
  name: 'kill-all',
  about:
    'power loss: SIGKILL of every member at once, their unflushed writes lost (power-loss.ts), ' +
    'restarted after 0.2-1 s',
  async prepare(ctx) {
    for (const id of ctx.cluster.ids) {
      ctx.cluster.member(id).env = {
        NODE_OPTIONS: `--import=${powerLossLayer}`,
        FAULTS_POWERLOSS_JOURNAL: journal(ctx, id),
      };
    }
  },
  async run(ctx) {
    while (more(ctx)) {
      await hold(ctx, between(ctx.rng, 1000, 3000));
      if (!more(ctx)) break;
      await Promise.all(ctx.cluster.ids.map((id) => ctx.cluster.kill(id)));
      let lost = 0;
      for (const id of ctx.cluster.ids) lost += await losePower(journal(ctx, id));
      ctx.log(`kill all; ${lost} unflushed bytes lost`);
      count(ctx, 'kill-alls');
      count(ctx, 'kills', ctx.cluster.ids.length);
      count(ctx, 'unflushed bytes lost', lost);
      await sleep(between(ctx.rng, 200, 1000));
      await restartDead(ctx);
    }
  },
};

// ---- membership and leadership ----

/**
 * Removes `victim` under load, then adds it back with its disk: either it keeps running
 * meanwhile (removed, it must not disrupt the others) or it is SIGKILLed and restarted first.
 * (Not with an empty disk: the guide rules that out for a reused id.)
 */
async function removeAndReadd(ctx: RunContext, victim: number): Promise<boolean> {
  const c = ctx.cluster;
  const removed = await c.leaderRequest('DELETE', `/members/${victim}`, undefined, 15_000);
  if (!removed.ok) {
    ctx.log(`remove ${victim} did not finish: ${removed.last}`);
    return false;
  }
  ctx.log(`removed ${victim}`);
  count(ctx, 'removals');
  await hold(ctx, between(ctx.rng, 300, 1500));
  if (ctx.rng() < 0.5) {
    await c.kill(victim);
    c.spawn(victim);
    ctx.log(`restarted ${victim} (removed)`);
  }
  return readd(ctx, victim);
}

async function readd(ctx: RunContext, victim: number): Promise<boolean> {
  const c = ctx.cluster;
  const port = await c.net.fanIn(victim);
  const http = `127.0.0.1:${c.member(victim).httpPort}`;
  const body = JSON.stringify({ id: victim, raft: `127.0.0.1:${port}`, http });
  const added = await c.leaderRequest('POST', '/members', body, 20_000);
  if (!added.ok) {
    ctx.log(`re-add ${victim} did not finish: ${added.last}`);
    return false;
  }
  ctx.log(`re-added ${victim}`);
  count(ctx, 're-additions');
  return true;
}

/** Members removed and not yet added back, per cluster. */
const outstanding = new WeakMap<FaultCluster, Set<number>>();

const membership: Nemesis = {
  name: 'membership',
  about: 'a random member (the leader too) removed under load, left running or restarted, and added back',
  async run(ctx) {
    const out = new Set<number>();
    outstanding.set(ctx.cluster, out);
    while (more(ctx)) {
      const victim = pick(ctx.rng, ctx.cluster.ids);
      out.add(victim);
      if (await removeAndReadd(ctx, victim)) out.delete(victim);
      await hold(ctx, between(ctx.rng, 500, 1500));
    }
  },
  async heal(ctx) {
    await restartDead(ctx);
    for (const id of outstanding.get(ctx.cluster) ?? []) {
      if (!(await readd(ctx, id))) ctx.failures.push(`member ${id} could not be added back after the run`);
    }
  },
};

const transfer: Nemesis = {
  name: 'transfer',
  about: 'POST /transfer/<random member> to the leader every 0.3-1.5 s',
  async run(ctx) {
    while (more(ctx)) {
      const leader = await ctx.cluster.leader();
      if (leader !== undefined) {
        const to = pick(
          ctx.rng,
          ctx.cluster.ids.filter((id) => id !== leader),
        );
        const r = await ctx.cluster.leaderRequest('POST', `/transfer/${to}`, undefined, 5000);
        ctx.log(`transfer ${leader} -> ${to}: ${r.ok ? 'done' : r.last}`);
        count(ctx, r.ok ? 'transfers' : 'transfers not done');
      }
      await hold(ctx, between(ctx.rng, 300, 1500));
    }
  },
};

// ---- disk ----

/**
 * Kills members at random instants while they save and snapshot (a snapshot every 20 entries),
 * each kill a machine crash: what the member had not flushed is lost (power-loss.ts).
 */
const diskKill: Nemesis = {
  name: 'disk-kill',
  about:
    'SIGKILL of random members every 0.1-0.5 s while they save and snapshot (--snapshot-delta 20), ' +
    'unflushed writes lost',
  args: ['--snapshot-delta', '20'],
  prepare: killAll.prepare!,
  async run(ctx) {
    const c = ctx.cluster;
    while (more(ctx)) {
      const down = c.ids.filter((id) => !c.running(id));
      const alive = c.ids.filter((id) => c.running(id));
      if (down.length < 2 && alive.length > 0) {
        const victim = ctx.rng() < 0.4 ? ((await c.leader()) ?? pick(ctx.rng, alive)) : pick(ctx.rng, alive);
        await c.kill(victim);
        count(ctx, 'kills');
        // Evidence of where the kill landed: a snapshot half written, a save not yet flushed.
        if (existsSync(join(c.member(victim).dataDir, 'snapshot.tmp'))) count(ctx, 'kills mid-snapshot');
        if ((await losePower(journal(ctx, victim))) > 0) count(ctx, 'kills mid-save');
        setTimeout(
          () => {
            if (!c.running(victim)) c.spawn(victim);
          },
          between(ctx.rng, 100, 500),
        );
      }
      await hold(ctx, between(ctx.rng, 100, 500));
    }
    await sleep(600);
  },
  async check(ctx) {
    count(
      ctx,
      'torn tails cut',
      ctx.cluster.ids.reduce((n, id) => n + ctx.cluster.member(id).tornTails, 0),
    );
  },
};

/** Every nemesis except the disk-full one (which needs a mount) and mixed (built from these). */
export const BASIC: Nemesis[] = [
  partition,
  bridge,
  isolate,
  flap,
  slow,
  kill,
  killLeader,
  pause,
  killAll,
  membership,
  transfer,
  diskKill,
];

/** A mix: each step a random fault from the others (network, kills, pauses, transfers, membership). */
export const mixed: Nemesis = {
  name: 'mixed',
  about:
    'all of the above at random: partitions, isolation, flapping, delays, kills, pauses, transfers, ' +
    'removal and re-addition',
  async run(ctx) {
    const c = ctx.cluster;
    const out = new Set<number>();
    outstanding.set(c, out);
    while (more(ctx)) {
      const r = ctx.rng();
      if (r < 0.2) {
        const order = shuffle(ctx.rng, c.ids);
        c.net.partition([order.slice(0, 2), order.slice(2)]);
        ctx.log(`mixed: partition ${c.net.describe()}`);
        count(ctx, 'partitions');
      } else if (r < 0.3) {
        const from = pick(ctx.rng, c.ids);
        const to = pick(
          ctx.rng,
          c.ids.filter((id) => id !== from),
        );
        c.net.setDelay(from, to, { ms: between(ctx.rng, 10, 100), jitter: between(ctx.rng, 0, 30) });
        c.net.setCut(to, from, ctx.rng() < 0.5);
        count(ctx, 'flips');
      } else if (r < 0.5) {
        const victim = pick(
          ctx.rng,
          c.ids.filter((id) => c.running(id)),
        );
        if (victim !== undefined && c.ids.filter((id) => !c.running(id)).length < 2) {
          await c.kill(victim);
          ctx.log(`mixed: kill ${victim}`);
          count(ctx, 'kills');
        }
      } else if (r < 0.65) {
        const victim = await target(ctx, 0.6);
        if (c.running(victim) && !c.member(victim).paused) {
          c.pause(victim);
          ctx.log(`mixed: pause ${victim}`);
          count(ctx, 'pauses');
          setTimeout(() => c.resume(victim), between(ctx.rng, 800, 2500));
        }
      } else if (r < 0.75) {
        const leader = await c.leader();
        if (leader !== undefined) {
          const to = pick(
            ctx.rng,
            c.ids.filter((id) => id !== leader),
          );
          const t = await c.leaderRequest('POST', `/transfer/${to}`, undefined, 3000);
          count(ctx, t.ok ? 'transfers' : 'transfers not done');
        }
      } else if (r < 0.8 && out.size === 0) {
        c.net.heal();
        await restartDead(ctx);
        const victim = pick(ctx.rng, c.ids);
        out.add(victim);
        if (await removeAndReadd(ctx, victim)) out.delete(victim);
      } else {
        c.net.heal();
        await restartDead(ctx);
        for (const id of c.ids) c.resume(id);
        ctx.log('mixed: heal');
      }
      await hold(ctx, between(ctx.rng, 300, 1500));
    }
  },
  heal: membership.heal!,
};
