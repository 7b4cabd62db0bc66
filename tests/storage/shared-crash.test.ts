// SharedLog under SIGKILL: a child process runs several groups on one log, is killed at random
// moments (while saving, checkpointing, or still opening), and the parent checks that every
// group holds every acknowledged save and nothing past the last attempted one.
import { readdir } from 'node:fs/promises';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SharedLog } from '../../src/file.js';
import { Child } from './crash-harness.js';
import { tempDir } from './file-harness.js';
import { crashBatch, ModelStorage, prng, type Tr } from './workload.js';

const SEED = Number(process.env['TICKRAFT_CRASH_SEED'] ?? 20261203);
const GROUPS = 4;
const KILLS = 30;

/** The last `word` ("try" or "ack") sequence number each group recorded. */
function lastOf(lines: readonly string[], word: string): Map<number, number> {
  const out = new Map<number, number>();
  for (const line of lines) {
    const [g, w, n] = line.split(' ');
    if (w === word && g !== undefined) out.set(Number(g.slice(1)), Number(n));
  }
  return out;
}

describe('SharedLog under SIGKILL', () => {
  it('keeps every acknowledged save of every group and invents nothing past the last attempted one', async () => {
    const { dir: base, remove } = await tempDir('tickraft-shared-crash-');
    const dir = path.join(base, 'data');
    const progress = (k: number) => path.join(base, `progress-${k}`);
    const child = (k: number) =>
      new Child('tests/storage/shared-crash-child.js', [dir, String(SEED), String(GROUPS)], progress(k));
    const rand = prng(SEED ^ 0x5bd1e995);
    // The state each group must hold: batches 1..model.term of its deterministic workload.
    const models = Array.from({ length: GROUPS }, () => new ModelStorage());
    let acks = 0;
    let lastSegment = 0;
    let torn = 0;
    let next = child(0);
    try {
      for (let k = 0; k < KILLS; k++) {
        const current = next;
        const run = await current.go(rand);
        next = child(k + 1);
        const tried = lastOf(run.lines, 'try');
        const acked = lastOf(run.lines, 'ack');
        const log = new SharedLog<Tr, unknown>(dir, { onWarning: () => torn++ });
        await log.open();
        try {
          for (let g = 0; g < GROUPS; g++) {
            const model = models[g]!;
            const before = model.term;
            const where = `kill ${k}, group ${g}: ${JSON.stringify({ before, ...run, lines: run.lines.slice(-8) })}`;
            const state = await log.group(g).load();
            // Batch n carries hardState.term = n, so the term names the last batch on disk.
            const last = state.term;
            acks += Math.max(0, (acked.get(g) ?? before) - before);
            expect(last, `acknowledged batch lost; ${where}`).toBeGreaterThanOrEqual(acked.get(g) ?? before);
            expect(last, `batch ${last} appeared unattempted; ${where}`).toBeLessThanOrEqual(tried.get(g) ?? before);
            for (let seq = before + 1; seq <= last; seq++) model.apply(crashBatch(model, SEED + g, seq));
            expect(state, `state after batch ${last}; ${where}`).toEqual(model.state());
          }
        } finally {
          await log.close();
        }
        for (const name of await readdir(dir)) lastSegment = Math.max(lastSegment, Number(/\d+/.exec(name)?.[0] ?? 0));
      }
    } finally {
      next.kill();
      await next.closed.catch(() => {});
      await remove();
    }
    console.log(
      `shared-log crash test: ${KILLS} SIGKILLs, ${GROUPS} groups, ${acks} acknowledged saves verified, ${torn} torn tails cut, ${lastSegment} segments started`,
    );
    expect(acks).toBeGreaterThan(KILLS);
    // The log rolled (and checkpointed) many times, so kills also hit checkpoints and deletions.
    expect(lastSegment).toBeGreaterThan(5);
  }, 120_000);
});
