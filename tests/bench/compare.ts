/**
 * This build against another, in one run: `node dist/tests/bench/compare.js <other checkout>
 * [--clients 1,64,1024] [--pairs 5] [--ms 2000]`. The other checkout must be built (`npx tsc`)
 * and have tests/bench/inprocess.ts. For each client count it runs the in-process case
 * alternately on both builds, `pairs` times, so both see the same moments of a noisy machine,
 * and prints each pair's ratio (this / other) and their median. Nothing is asserted.
 *
 *   git worktree add ../before <commit> && (cd ../before && npm ci && npx tsc)
 *   npm run build && node dist/tests/bench/compare.js ../before --pairs 5
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { runInProcess, type Figures } from './inprocess.js';
import type { Timing } from './workload.js';

/** Before the bench's JIT warm-up (Timing), runInProcess took the warm-up and the window as numbers. */
type Run = ((clients: number, warmupMs: number, measureMs: number) => Promise<Figures>) &
  ((clients: number, timing: Timing) => Promise<Figures>);

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { clients: { type: 'string' }, pairs: { type: 'string' }, ms: { type: 'string' } },
});
const other = positionals[0];
if (other === undefined) {
  console.error(
    'usage: node dist/tests/bench/compare.js <other checkout> [--clients 1,64,1024] [--pairs 5] [--ms 2000]',
  );
  process.exit(2);
}
const clients = (values.clients ?? '1,64,1024').split(',').map(Number);
const pairs = Number(values.pairs ?? 5);
const ms = Number(values.ms ?? 2000);
const run = (
  (await import(pathToFileURL(resolve(other, 'dist/tests/bench/inprocess.js')).href)) as { runInProcess: Run }
).runInProcess;
/** No JIT warm-up on either side: older builds have none. */
const timing: Timing = { jitWarmupMs: 0, warmupMs: 500, measureMs: ms };
const theirs = (c: number): Promise<Figures> => (run.length === 2 ? run(c, timing) : run(c, 500, ms));

/** The true median: the mean of the two middle values when there is an even number. */
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};
const show = (f: Figures): string => `${Math.round(f.commitsPerSec / 1000)}K/s p50 ${f.p50Us} µs`;

console.log(`in-process, this build / ${other}, ${pairs} pairs of ${ms} ms (alternating, order swapped each pair)`);
for (const c of clients) {
  const ratios: number[] = [];
  const p50s: number[] = [];
  for (let i = 0; i < pairs; i++) {
    // Swap who goes first each pair, so neither always runs on a warmer (or busier) machine.
    const first = i % 2 === 0;
    const a = first ? await runInProcess(c, timing) : undefined;
    const b = await theirs(c);
    const mine = a ?? (await runInProcess(c, timing));
    ratios.push(mine.commitsPerSec / b.commitsPerSec);
    p50s.push(mine.p50Us / b.p50Us);
    console.log(`  c${c} pair ${i + 1}: this ${show(mine)}, other ${show(b)}, ratio ${ratios.at(-1)!.toFixed(2)}`);
  }
  const lo = Math.min(...ratios).toFixed(2);
  const hi = Math.max(...ratios).toFixed(2);
  console.log(
    `c${c}: commits/s ratio median ${median(ratios).toFixed(2)} (${lo}–${hi}), p50 ratio ${median(p50s).toFixed(2)}`,
  );
}
