// The fault suite (`npm run faults`): a Jepsen-style check of the deployed shape. For each
// nemesis, five tickraft-kv processes (FileStorage, fsync on) start on loopback with every Raft
// link through the suite's proxies; concurrent HTTP clients read, write and delete a few keys
// while the nemesis partitions, kills, pauses, fills disks or changes the membership; then
// everything is healed and the run is checked:
//   - the cluster serves a write within RECOVERY_BOUND ms of the heal;
//   - every member converges to the same state;
//   - the whole history, plus each member's final state read as one last get per key, is
//     linearizable (so no acknowledged write is missing on any member).
// One line per nemesis: `PASS|FAIL name: ops, availability, recovery`; the last line is exactly
// `faults: N passed, M failed`.
//
//   npm run faults -- --quick              every nemesis, short (CI)
//   npm run faults -- --minutes 10         the long run: 10 minutes of faults per nemesis
//   npm run faults                         1 minute per nemesis
//   options: --seconds N, --seed N (replay), --only a,b (some nemeses), --clients N, --verbose,
//            --kv-args='<flags>' (extra tickraft-kv flags for every member),
//            --keep (data of failed runs), --save (every run's history to a file, not only a failing one's)
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { httpRequest, sleep } from '../../docs/examples/kv/client.js';
import { deriveSeed, seededRandom } from '../../src/sim/random.js';
import { checkable, finalReads, verify } from './checks.js';
import { FaultCluster } from './cluster.js';
import { diskFull } from './disk-full.js';
import { BASIC, mixed, type Nemesis, type RunContext } from './nemeses.js';
import { stripPadding, Workload, type Recorded } from './workload.js';

const serverJs = fileURLToPath(new URL('../../docs/examples/kv/server.js', import.meta.url));
const NEMESES: Nemesis[] = [...BASIC, diskFull, mixed];
const KEYS = ['a', 'b', 'c', 'd'];
const IDS = [1, 2, 3, 4, 5];
/** Ms after the heal within which the cluster must serve a write. */
const RECOVERY_BOUND = 30_000;
/** Ms to wait for a leader at start and for convergence at the end. */
const SETTLE = 30_000;

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean' },
    minutes: { type: 'string' },
    seconds: { type: 'string' },
    seed: { type: 'string' },
    only: { type: 'string' },
    clients: { type: 'string' },
    verbose: { type: 'boolean' },
    'kv-args': { type: 'string' },
    keep: { type: 'boolean' },
    save: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (flags.help) {
  console.log(`usage: npm run faults -- [--quick | --minutes N | --seconds N] [--seed N] [--only a,b]
       [--clients N] [--kv-args='<tickraft-kv flags>'] [--verbose] [--keep] [--save]
nemeses: ${NEMESES.map((n) => n.name).join(', ')}`);
  process.exit(0);
}
const faultMs =
  flags.minutes !== undefined
    ? Number(flags.minutes) * 60_000
    : flags.seconds !== undefined
      ? Number(flags.seconds) * 1000
      : flags.quick
        ? 8000
        : 60_000;
if (!(faultMs > 0)) throw new Error('--minutes/--seconds must be positive');
const seed = flags.seed !== undefined ? Number(flags.seed) : Math.floor(Math.random() * 2 ** 31);
if (!Number.isSafeInteger(seed)) throw new Error('--seed must be an integer');
const clients = Number(flags.clients ?? 6);
if (!Number.isSafeInteger(clients) || clients < 2) throw new Error('--clients must be an integer >= 2');
const kvArgs = flags['kv-args']?.split(/\s+/).filter(Boolean) ?? [];
const only = flags.only?.split(',');
const chosen = only ? NEMESES.filter((n) => only.includes(n.name)) : NEMESES;
if (only && chosen.length !== only.length) {
  throw new Error(`unknown nemesis in --only; known: ${NEMESES.map((n) => n.name).join(', ')}`);
}

/** One nemesis' figures and verdict. */
interface Outcome {
  name: string;
  pass: boolean;
  ops: number;
  ok: number;
  failed: number;
  unknown: number;
  /** Ok / invoked, for operations invoked during the fault phase. */
  availability: number;
  /** Ms from the heal to the first acknowledged write. */
  recovery: number | undefined;
  /** The longest stretch of the fault phase (ms) in which no write was acknowledged. */
  gap: number;
  stats: Record<string, number>;
  failures: string[];
}

let current: FaultCluster | undefined;
process.on('exit', () => current?.killAllNow());
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    console.log(`\n${sig}: stopping the members`);
    current?.killAllNow();
    process.exit(130);
  });
}

/** Polls `probe` until it returns a value or `timeout` ms pass. */
async function until<R>(timeout: number, probe: () => Promise<R | undefined>, every = 100): Promise<R | undefined> {
  const end = Date.now() + timeout;
  for (;;) {
    const r = await probe();
    if (r !== undefined || Date.now() > end) return r;
    await sleep(every);
  }
}

/** Writes one probe key until a member acknowledges it; resolves with the time it took, or undefined. */
async function probeWrite(c: FaultCluster, n: number, timeout: number): Promise<number | undefined> {
  const start = Date.now();
  const headers = { 'x-client-id': `faults-probe-${n}-${start}`, 'x-client-seq': '1' };
  return until(
    timeout,
    async () => {
      const leader = await c.leader();
      if (leader === undefined) return undefined;
      try {
        const a = await httpRequest(`${c.origin(leader)}/kv/probe`, {
          method: 'PUT',
          body: String(n),
          headers,
          agent: c.agent,
          timeout: 3000,
        });
        return a.status === 204 ? Date.now() - start : undefined;
      } catch {
        return undefined;
      }
    },
    50,
  );
}

/** Waits until every member runs, has applied everything committed, and lists every member as a voter. */
async function converge(c: FaultCluster): Promise<string | undefined> {
  let last = '';
  const done = await until(
    SETTLE,
    async () => {
      const all = await Promise.all(c.ids.map((id) => c.status(id, 3000)));
      const missing = c.ids.filter((_, i) => all[i] === undefined);
      if (missing.length > 0) {
        last = `no status from ${missing.join(',')}`;
        return undefined;
      }
      const applied = all.map((s) => s!.status.lastApplied);
      const commit = Math.max(...all.map((s) => s!.status.commitIndex));
      const leader = all.find((s) => s!.status.role === 'leader');
      const voters = leader?.membership ?? [];
      last =
        `applied ${applied.join(',')} of ${commit}; leader ${leader?.status.id ?? 'none'}; ` +
        `voters ${voters.join(',')}`;
      return applied.every((a) => a === commit) && c.ids.every((id) => voters.includes(id)) ? true : undefined;
    },
    200,
  );
  return done ? undefined : `members did not converge within ${SETTLE} ms (${last})`;
}

async function runOne(nem: Nemesis, index: number): Promise<Outcome> {
  const runSeed = deriveSeed(seed, index);
  const rng = seededRandom(runSeed);
  const t0 = performance.now();
  const now = (): number => Math.round((performance.now() - t0) * 1000) / 1000;
  const story: string[] = [];
  const dir = await mkdtemp(join(tmpdir(), `tickraft-faults-${nem.name}-`));
  const cluster = await FaultCluster.create({
    serverJs,
    dir,
    ids: IDS,
    args: [...(nem.args ?? []), ...kvArgs],
    nodeArgs: [],
    rng: seededRandom(deriveSeed(runSeed, 1)),
  });
  current = cluster;
  let phase: 'start' | 'fault' | 'heal' = 'start';
  const ctx: RunContext = {
    cluster,
    rng,
    now,
    until: Infinity,
    stats: {},
    failures: [],
    log: (what) => {
      const line = `[${(now() / 1000).toFixed(2).padStart(7)} s] ${what}`;
      story.push(line);
      if (story.length > 400) story.splice(0, story.length - 400);
      if (flags.verbose) console.log(`  ${nem.name} ${line}`);
    },
  };
  const workload = new Workload({
    origins: () => cluster.ids.map((id) => cluster.origin(id)),
    keys: KEYS,
    clients,
    attemptTimeout: 4000,
    quickTimeout: 500,
    opDeadline: 6000,
    now,
    faulty: () => phase === 'fault',
    rng: (client) => seededRandom(deriveSeed(runSeed, 100 + client)),
    padding: nem.name === 'disk-full' ? 4000 : 0,
  });
  let recovery: number | undefined;
  let report: string | undefined;
  let faultStart = 0;
  let faultEnd = 0;
  try {
    await nem.prepare?.(ctx);
    cluster.start();
    if ((await until(SETTLE, () => cluster.leader())) === undefined) {
      throw new Error(`no leader within ${SETTLE} ms of the start`);
    }
    ctx.log('leader elected; clients start');
    workload.start();
    await sleep(1000);
    phase = 'fault';
    faultStart = now();
    ctx.until = faultStart + faultMs;
    try {
      await nem.run(ctx);
    } catch (error) {
      ctx.failures.push(`the nemesis failed: ${(error as Error).stack ?? String(error)}`);
    }
    phase = 'heal';
    faultEnd = now();
    ctx.log('heal');
    const healed = Date.now();
    await nem.heal?.(ctx);
    cluster.net.heal();
    for (const id of cluster.ids) {
      cluster.resume(id);
      if (!cluster.running(id)) cluster.spawn(id);
    }
    const took = await probeWrite(cluster, index, RECOVERY_BOUND);
    if (took === undefined) ctx.failures.push(`no write acknowledged within ${RECOVERY_BOUND} ms of the heal`);
    else recovery = Date.now() - healed;
    ctx.log(`recovered: a write acknowledged ${recovery ?? '-'} ms after the heal`);
    await sleep(1000);
    await workload.stop();
    const diverged = await converge(cluster);
    if (diverged) ctx.failures.push(diverged);
    const at = now();
    const finals = [];
    const dumps = new Map<number, Record<string, string>>();
    for (const id of cluster.ids) {
      try {
        const d = await cluster.dump(id);
        dumps.set(id, d.data);
        finals.push(...finalReads(id, d.data, KEYS, at, stripPadding));
      } catch (error) {
        ctx.failures.push(`member ${id}: ${(error as Error).message}`);
      }
    }
    const states = [...dumps].map(([id, d]) => `${id}: ${JSON.stringify(KEYS.map((k) => d[k] && stripPadding(d[k])))}`);
    if (new Set([...dumps.values()].map((d) => JSON.stringify(KEYS.map((k) => d[k])))).size > 1) {
      ctx.failures.push(`members hold different data: ${states.join('; ')}`);
    }
    const checked = [...checkable(workload.history), ...finals];
    const checking = Date.now();
    const verdict = verify(checked);
    ctx.log(`checked ${checked.length} ops in ${Date.now() - checking} ms (${verdict.states} search states)`);
    const file = join(tmpdir(), `tickraft-faults-${nem.name}-${seed}.json`);
    if (!verdict.ok || flags.save) {
      await writeFile(file, JSON.stringify({ seed, runSeed, story, history: workload.history, finals }));
    }
    if (flags.save) ctx.log(`history saved: ${file}`);
    if (!verdict.ok) {
      report = verdict.report;
      ctx.failures.push(`the history is not linearizable (the whole history: ${file})`);
    }
    await nem.check?.(ctx);
  } catch (error) {
    ctx.failures.push((error as Error).stack ?? String(error));
    await workload.stop().catch(() => undefined);
  } finally {
    const logs =
      ctx.failures.length === 0
        ? []
        : cluster.ids.map((id) => `--- member ${id} (last lines) ---\n${cluster.logTail(id)}`);
    await cluster.destroy();
    await nem.cleanup?.(ctx).catch((e: unknown) => ctx.failures.push(`cleanup: ${(e as Error).message}`));
    current = undefined;
    if (ctx.failures.length > 0) {
      console.log(
        `--- ${nem.name} failed (seed ${seed}, run seed ${runSeed}); ` +
          `replay: npm run faults -- --seed ${seed} --only ${nem.name}` +
          ` ${flags.quick ? '--quick' : `--seconds ${faultMs / 1000}`}`,
      );
      for (const f of ctx.failures) console.log(`  ${f}`);
      if (report) console.log(report);
      console.log('--- the run, last events ---');
      console.log(story.slice(-60).join('\n'));
      console.log(logs.join('\n'));
    }
    if (ctx.failures.length === 0 || !flags.keep) await rm(dir, { recursive: true, force: true });
    else console.log(`  data kept in ${dir}`);
  }
  const h = workload.history;
  const during = h.filter((r) => r.duringFault);
  return {
    name: nem.name,
    pass: ctx.failures.length === 0,
    ops: h.length,
    ok: h.filter((r) => r.outcome === 'ok').length,
    failed: h.filter((r) => r.outcome === 'fail').length,
    unknown: h.filter((r) => r.outcome === 'unknown').length,
    availability: during.length === 0 ? 1 : during.filter((r) => r.outcome === 'ok').length / during.length,
    recovery,
    gap: longestGap(h, faultStart, faultEnd),
    stats: ctx.stats,
    failures: ctx.failures,
  };
}

/** The longest time within [from, to] with no write acknowledged. */
function longestGap(h: Recorded[], from: number, to: number): number {
  const acks = h
    .filter((r) => r.outcome === 'ok' && r.op.kind !== 'get' && r.ret! >= from && r.ret! <= to)
    .map((r) => r.ret!);
  const points = [from, ...acks.sort((a, b) => a - b), to];
  let gap = 0;
  for (let i = 1; i < points.length; i++) gap = Math.max(gap, points[i]! - points[i - 1]!);
  return to > from ? gap : 0;
}

function line(o: Outcome): string {
  const stats = Object.entries(o.stats)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  return (
    `${o.pass ? 'PASS' : 'FAIL'} ${o.name}: ${o.ops} ops ` +
    `(ok ${o.ok}, failed ${o.failed}, unknown ${o.unknown}), ` +
    `availability ${(o.availability * 100).toFixed(1)}% (longest without a write ${(o.gap / 1000).toFixed(1)} s), ` +
    `recovery ${o.recovery === undefined ? '-' : `${(o.recovery / 1000).toFixed(2)} s`}` +
    (stats ? ` [${stats}]` : '')
  );
}

console.log(
  `faults: seed ${seed}, ${chosen.length} nemeses, ${faultMs / 1000} s of faults each, ` +
    `${clients} clients on keys ${KEYS.join(',')}`,
);
const started = Date.now();
const outcomes: Outcome[] = [];
for (const nem of chosen) {
  const o = await runOne(nem, NEMESES.indexOf(nem));
  outcomes.push(o);
  console.log(line(o));
}
const passed = outcomes.filter((o) => o.pass).length;
console.log(`(${((Date.now() - started) / 1000).toFixed(0)} s in all; replay with --seed ${seed})`);
console.log(`faults: ${passed} passed, ${outcomes.length - passed} failed`);
process.exit(passed === outcomes.length ? 0 : 1);
