import { readdir, stat, truncate } from 'node:fs/promises';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileStorage } from '../../src/file.js';
import { Child } from './crash-harness.js';
import { tempDir } from './file-harness.js';
import { crashBatch, ModelStorage, modelOf, prng, type Tr } from './workload.js';

const SEED = Number(process.env['TICKRAFT_CRASH_SEED'] ?? 20240611);
const LANES = 2; // children run in parallel, each lane on its own directory
const KILLS_PER_LANE = 100;

describe('FileStorage under SIGKILL', () => {
  it('keeps every acknowledged save and invents nothing past the last attempted one', async () => {
    const started = Date.now();
    let kills = 0;
    let torn = 0;
    let unfinished = 0;
    let tears = 0;
    let acks = 0;
    const phase = { boot: 0, run: 0, verify: 0 };
    const lane = async (laneNo: number) => {
      const { dir: laneDir, remove } = await tempDir('tickraft-crash-');
      const dir = path.join(laneDir, 'data');
      const progress = (k: number) => path.join(laneDir, `progress-${k}`);
      const seed = SEED + laneNo;
      const rand = prng(seed ^ 0x5bd1e995);
      // The state the directory must hold: batches 1..model.term of the deterministic workload.
      let model = new ModelStorage();
      let next = new Child('tests/storage/crash-child.js', [dir, String(seed)], progress(0));
      try {
        for (let k = 0; k < KILLS_PER_LANE; k++) {
          const child = next;
          const before = model.term;
          let t = performance.now();
          await child.booted;
          phase.boot += performance.now() - t;
          t = performance.now();
          const run = await child.go(rand);
          phase.run += performance.now() - t;
          t = performance.now();
          // The next child boots while this one is checked; it waits for "go" to open the dir.
          next = new Child('tests/storage/crash-child.js', [dir, String(seed)], progress(k + 1));
          kills++;
          const where = `kill ${k}, lane ${laneNo}: ${JSON.stringify({ before, ...run, lines: run.lines.slice(-6) })}`;
          if (run.ready !== undefined)
            expect(run.ready, `the child loaded what the parent verified; ${where}`).toBe(before);
          const acked = run.acked ?? before;
          const tried = run.tried ?? before;
          acks += acked - before;

          const storage = new FileStorage<Tr, unknown>(dir, {
            onWarning: (m) => (m.includes('never written') ? unfinished++ : torn++),
          });
          const state = await storage.load();
          await storage.close();
          // Batch n carries hardState.term = n, so the term names the last batch on disk.
          const last = state.term;
          expect(last, `acknowledged batch ${acked} lost; ${where}`).toBeGreaterThanOrEqual(acked);
          expect(last, `batch ${last} appeared, but only ${tried} was attempted; ${where}`).toBeLessThanOrEqual(tried);
          for (let seq = before + 1; seq < last; seq++) model.apply(crashBatch(model, seed, seq));
          const lastBatch = last > before ? crashBatch(model, seed, last) : undefined;
          const beforeLast = model.state();
          if (lastBatch) model.apply(lastBatch);
          expect(state, `state after batch ${last}; ${where}`).toEqual(model.state());

          // A SIGKILL never tears a write here, but a power cut can. Simulate one: cut a few
          // bytes off the end when the last record is an unacknowledged batch without a
          // snapshot (with a snapshot, its record was flushed before the snapshot was written).
          if (lastBatch && last > acked && lastBatch.snapshot === undefined && rand() < 0.3) {
            const segs = (await readdir(dir)).filter((n) => n.endsWith('.seg')).sort();
            const file = path.join(dir, segs.at(-1)!);
            await truncate(file, (await stat(file)).size - 1 - Math.floor(rand() * 16));
            const reopened = new FileStorage<Tr, unknown>(dir);
            const cut = await reopened.load();
            await reopened.close();
            expect(reopened.recovery.tornTailBytes, `torn tail reported; ${where}`).toBeGreaterThan(0);
            expect(cut, `state after tearing batch ${last}; ${where}`).toEqual(beforeLast);
            model = modelOf(beforeLast);
            tears++;
          }
          phase.verify += performance.now() - t;
        }
      } finally {
        next.kill();
        await next.closed.catch(() => {});
        await remove();
      }
    };
    // allSettled, so that a failing lane does not end the test while the other still runs.
    const results = await Promise.allSettled(Array.from({ length: LANES }, (_, i) => lane(i)));
    for (const r of results) if (r.status === 'rejected') throw r.reason;
    const seconds = (Date.now() - started) / 1000;
    console.log(
      `crash test: ${kills} SIGKILLs, ${acks} acknowledged saves verified, ${torn} torn tails cut, ${unfinished} batches whose snapshot never landed rolled back, ${tears} simulated torn writes recovered, ${seconds.toFixed(1)} s (seed ${SEED})`,
    );
    if (process.env['TICKRAFT_CRASH_TIMING'])
      console.log(
        'ms per kill',
        Object.entries(phase)
          .map(([k, v]) => `${k} ${(v / kills).toFixed(1)}`)
          .join(', '),
      );
    expect(kills).toBeGreaterThanOrEqual(200);
  }, 120_000);
});
