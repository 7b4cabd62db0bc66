/**
 * tickraft's benchmark suite: `npm run bench [-- --quick] [-- --json FILE] [-- --no-docs]`.
 *
 * Measures the machine's ceilings and tickraft in the same run (see limits.ts, inprocess.ts,
 * processes.ts), prints a table, and with `--json FILE` writes the figures in the shape of the
 * issue. A full run (not `--quick`) also writes docs/performance.md and docs/performance.svg.
 * Nothing is asserted about timings; the run fails only if replicas disagree on what they
 * applied, or something breaks.
 */
import { writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { runInProcess, type Figures } from './inprocess.js';
import { measureLimits, type LimitDetails, type Limits } from './limits.js';
import { runFailover, runScalingChild, runTcp, type Failover } from './processes.js';

type Mode = 'inprocess' | 'tcp' | 'tcpFsync';
const MODES: Mode[] = ['inprocess', 'tcp', 'tcpFsync'];
const CLIENTS = [1, 64, 1024] as const;
type Row = Record<'c1' | 'c64' | 'c1024', Figures>;

export interface BenchResult {
  inprocess: Row;
  tcp: Row;
  tcpFsync: Row;
  failover: { trials: number; medianMs: number; p90Ms: number };
  scaling: { entries: number[]; commitsPerSec: number[]; rssMb: number[] };
  limits: Limits;
}

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const jsonAt = args.indexOf('--json');
const jsonFile = jsonAt >= 0 ? args[jsonAt + 1] : undefined;
if (jsonAt >= 0 && (jsonFile === undefined || jsonFile.startsWith('--'))) throw new Error('bench: --json needs a file name');
const writeDocs = !quick && !args.includes('--no-docs');

const log = (s: string): void => { process.stderr.write(`${s}\n`); };
const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
const pct = (x: number): string => `${(x * 100).toFixed(x < 0.1 ? 1 : 0)}%`;

/** Runs `fn` `n` times and keeps the run with the median commit rate. */
async function median(n: number, fn: () => Promise<Figures>): Promise<Figures> {
  const runs: Figures[] = [];
  for (let i = 0; i < n; i++) runs.push(await fn());
  runs.sort((a, b) => a.commitsPerSec - b.commitsPerSec);
  return runs[Math.floor(runs.length / 2)]!;
}

async function main(): Promise<void> {
  const started = Date.now();
  const repeats = quick ? 1 : 3;
  const warmupMs = quick ? 150 : 500;
  const measureMs = quick ? 400 : 2000;

  log(`tickraft bench (${quick ? 'quick' : 'full'}): limits…`);
  const { limits, details } = await measureLimits(quick);

  const result: Partial<BenchResult> = { limits };
  for (const mode of MODES) {
    const row: Partial<Row> = {};
    for (const c of CLIENTS) {
      log(`  ${mode} c${c}…`);
      row[`c${c}`] = await median(repeats, () => (mode === 'inprocess' ? runInProcess(c, warmupMs, measureMs) : runTcp(mode === 'tcp' ? 'memory' : 'file', c, warmupMs, measureMs)));
    }
    result[mode] = row as Row;
  }
  log('  scaling…');
  result.scaling = await runScalingChild([1e3, 1e4, 1e5, 1e6], 64);
  log('  failover…');
  const failover: Failover = await runFailover(quick ? 3 : 12);
  result.failover = { trials: failover.trials, medianMs: failover.medianMs, p90Ms: failover.p90Ms };

  const r = result as BenchResult;
  const table = render(r, details, failover.samples);
  process.stdout.write(`${table}\n`);
  log(`bench finished in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  if (jsonFile) writeFileSync(jsonFile, `${JSON.stringify(r, null, 2)}\n`);
  if (writeDocs) {
    const docs = fileURLToPath(new URL('../../../docs/', import.meta.url));
    writeFileSync(`${docs}performance.md`, markdown(r, table));
    writeFileSync(`${docs}performance.svg`, chart(r));
    log('wrote docs/performance.md and docs/performance.svg');
  }
}

/** What each figure is compared with (the same run's measured ceilings). */
function ceilings(r: BenchResult, d: LimitDetails): Record<Mode, { rate: number; rateWhat: string; c1Us: number; c1What: string }> {
  const l = r.limits;
  return {
    inprocess: {
      rate: l.inprocessRoundsPerSec * d.inprocessBatch, rateWhat: `plain-JS rounds × ${d.inprocessBatch}-entry batches`,
      c1Us: 1e6 / d.inprocessRoundsPerSecC1, c1What: 'one plain-JS round with 1 entry',
    },
    tcp: { rate: l.tcpFramesPerSec, rateWhat: 'small frames/s over loopback', c1Us: l.tcpRoundTripP50Us, c1What: 'one loopback round trip' },
    tcpFsync: {
      rate: l.fsyncGroupCommitRecordsPerSec, rateWhat: 'fsync group-commit records/s',
      c1Us: 2 * d.fsyncP50Us + l.tcpRoundTripP50Us, c1What: '2 fsyncs + 1 round trip',
    },
  };
}

function render(r: BenchResult, d: LimitDetails, samples: number[]): string {
  const ceil = ceilings(r, d);
  const lines: string[] = [];
  lines.push('| mode | in flight | commits/s | p50 µs | p99 µs | commits/s of ceiling | c1 p50 of floor |');
  lines.push('|---|---:|---:|---:|---:|---:|---:|');
  for (const mode of MODES) {
    for (const c of CLIENTS) {
      const f = r[mode][`c${c}`];
      const floor = c === 1 ? pct(ceil[mode].c1Us / f.p50Us) : '';
      lines.push(`| ${mode} | ${c} | ${fmt(f.commitsPerSec)} | ${fmt(f.p50Us)} | ${fmt(f.p99Us)} | ${pct(f.commitsPerSec / ceil[mode].rate)} | ${floor} |`);
    }
  }
  lines.push('');
  lines.push('| ceiling (same run) | value | compared with |');
  lines.push('|---|---:|---|');
  lines.push(`| in-process leader→2 followers→ack rounds/s (batch ${d.inprocessBatch}) | ${fmt(r.limits.inprocessRoundsPerSec)} | inprocess commits/s ÷ (rounds/s × batch) = ${fmt(ceil.inprocess.rate)} |`);
  lines.push(`| in-process rounds/s with 1 entry in flight | ${fmt(d.inprocessRoundsPerSecC1)} | inprocess c1 p50: floor ${(ceil.inprocess.c1Us).toFixed(1)} µs |`);
  lines.push(`| loopback TCP round trip p50 (µs) | ${fmt(r.limits.tcpRoundTripP50Us)} | tcp c1 p50 |`);
  lines.push(`| loopback TCP frames/s (80-byte payloads) | ${fmt(r.limits.tcpFramesPerSec)} | tcp commits/s |`);
  lines.push(`| fsync group-commit records/s (1024 per write+fdatasync) | ${fmt(r.limits.fsyncGroupCommitRecordsPerSec)} | tcpFsync commits/s |`);
  lines.push(`| one small write+fdatasync p50 (µs) | ${fmt(d.fsyncP50Us)} | tcpFsync c1 p50: floor 2 fsyncs + 1 round trip = ${fmt(ceil.tcpFsync.c1Us)} µs |`);
  lines.push('');
  lines.push('| scaling (in-process, c64, snapshotDelta 10,000) | ' + r.scaling.entries.map((e) => e.toExponential(0).replace('+', '')).join(' | ') + ' |');
  lines.push('|---|' + r.scaling.entries.map(() => '---:').join('|') + '|');
  lines.push('| commits/s | ' + r.scaling.commitsPerSec.map(fmt).join(' | ') + ' |');
  lines.push('| RSS MB | ' + r.scaling.rssMb.map((x) => x.toFixed(1)).join(' | ') + ' |');
  lines.push('');
  lines.push(`failover (SIGKILL of the leader → the new leader's first commit): ${r.failover.trials} trials, median ${r.failover.medianMs} ms, p90 ${r.failover.p90Ms} ms (samples: ${samples.join(', ')} ms)`);
  return lines.join('\n');
}

function machine(): string {
  const c = cpus();
  return `${c.length} × ${c[0]?.model ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB memory, Node.js ${process.version} on ${process.platform}/${process.arch}`;
}

function markdown(r: BenchResult, table: string): string {
  return `# Performance

Generated by \`npm run bench\` (a full run) on ${new Date().toISOString().slice(0, 10)}. Do not edit by hand: run the bench again.

**Machine:** ${machine()}.

![commits/s against proposals in flight](performance.svg)

${table}

## What is measured

- Three replicas; 16-byte transitions (\`{ id, p }\` with a 16-character payload) submitted through the
  public API (the state machine's \`getPendingTransitions\`). \`cN\` = N closed-loop clients, each keeping one
  proposal in flight. A commit counts when the leader reports it \`applied\`; latency runs from submission to
  \`applied\` on the leader. After every run the bench checks that every replica applied exactly the
  leader's transitions (count and sum of ids) and fails loudly otherwise.
- \`inprocess\`: one process, MemoryStorage, and a real-time in-process Cluster (tests/bench/inprocess.ts) that
  hands messages over by reference (the replica never relies on sharing a message with its sender) and wakes the
  receiving replica through \`registerWakeup\`; replicas run \`start()\`.
- \`tcp\`: three Node.js processes on 127.0.0.1 with TcpCluster (msgpack) and MemoryStorage; \`tcpFsync\`: the same with
  FileStorage, fsync on. The load runs inside the leader process (tests/bench/server.ts), so no HTTP is measured.
- Each case is run ${'3'} times on a fresh cluster (0.5 s warm-up, 2 s measured); the table shows the run with the median
  commit rate.
- Failover: three processes with FileStorage, heartbeat 50 ms, election timeout [150, 300] ms, one proposal in flight;
  the leader is SIGKILLed and the time runs until a new leader reports its first transition applied.
- Scaling: one in-process cluster (in a process of its own, so RSS is its own) with snapshotDelta 10,000 and 64
  clients; the rate at X is over the 10,000 entries after X (one compaction each, so the points compare); RSS at X covers all three replicas.
- Ceilings, measured in the same run (tests/bench/limits.ts): a plain-JS leader→2 followers→ack round with batching
  and setImmediate wake-ups (no Raft code); a loopback TCP round trip and small-frame rate to another process with the
  transport's framing; one write + fdatasync per batch of 1024 records. Each tickraft figure is printed as a fraction
  of its ceiling.

## Reproduce

\`\`\`sh
npm ci
npm run bench                       # full run (~3 min): prints the table, rewrites this page and the chart
npm run bench -- --json out.json    # also writes the figures as JSON
npm run bench -- --quick            # < 1 min, fewer trials; does not touch the docs (CI runs it)
\`\`\`

Figures vary between runs by 10–30% on a busy 2-core machine; compare fractions of the ceilings across machines.
The JSON of this run:

\`\`\`json
${JSON.stringify(r, null, 2)}
\`\`\`
`;
}

/** A hand-written SVG line chart: commits/s (log scale) against proposals in flight (log scale). */
function chart(r: BenchResult): string {
  const W = 640, H = 400, L = 80, R = 130, T = 40, B = 50;
  const xs = CLIENTS.map((c) => Math.log10(c));
  const all = MODES.flatMap((m) => CLIENTS.map((c) => r[m][`c${c}`].commitsPerSec)).filter((v) => v > 0);
  const lo = Math.floor(Math.log10(Math.min(...all))), hi = Math.ceil(Math.log10(Math.max(...all)));
  const px = (x: number): number => L + (x / xs[xs.length - 1]!) * (W - L - R);
  const py = (v: number): number => T + (1 - (Math.log10(Math.max(v, 1)) - lo) / (hi - lo)) * (H - T - B);
  const colors: Record<Mode, string> = { inprocess: '#1f77b4', tcp: '#2ca02c', tcpFsync: '#d62728' };
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="14">tickraft: commits/s against proposals in flight (3 replicas)</text>`);
  for (let e = lo; e <= hi; e++) {
    const y = py(10 ** e);
    out.push(`<line x1="${L}" y1="${y.toFixed(1)}" x2="${W - R}" y2="${y.toFixed(1)}" stroke="#ddd"/>`);
    out.push(`<text x="${L - 6}" y="${(y + 4).toFixed(1)}" text-anchor="end">${fmt(10 ** e)}</text>`);
  }
  CLIENTS.forEach((c, i) => {
    const x = px(xs[i]!);
    out.push(`<line x1="${x.toFixed(1)}" y1="${T}" x2="${x.toFixed(1)}" y2="${H - B}" stroke="#eee"/>`);
    out.push(`<text x="${x.toFixed(1)}" y="${H - B + 16}" text-anchor="middle">${c}</text>`);
  });
  out.push(`<text x="${(L + W - R) / 2}" y="${H - 12}" text-anchor="middle">proposals in flight (closed-loop clients)</text>`);
  out.push(`<text x="16" y="${(T + H - B) / 2}" text-anchor="middle" transform="rotate(-90 16 ${(T + H - B) / 2})">commits/s (log scale)</text>`);
  out.push(`<rect x="${L}" y="${T}" width="${W - L - R}" height="${H - T - B}" fill="none" stroke="#888"/>`);
  MODES.forEach((m, k) => {
    const pts = CLIENTS.map((c, i) => `${px(xs[i]!).toFixed(1)},${py(r[m][`c${c}`].commitsPerSec).toFixed(1)}`);
    out.push(`<polyline points="${pts.join(' ')}" fill="none" stroke="${colors[m]}" stroke-width="2"/>`);
    for (const p of pts) { const [x, y] = p.split(','); out.push(`<circle cx="${x}" cy="${y}" r="3" fill="${colors[m]}"/>`); }
    const ly = T + 16 + k * 20;
    out.push(`<line x1="${W - R + 10}" y1="${ly - 4}" x2="${W - R + 30}" y2="${ly - 4}" stroke="${colors[m]}" stroke-width="2"/>`);
    out.push(`<text x="${W - R + 36}" y="${ly}">${m}</text>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

await main();
