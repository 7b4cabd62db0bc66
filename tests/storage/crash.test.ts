import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { readdir, readFile, stat, truncate } from 'node:fs/promises';
import * as path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { FileStorage } from '../../src/file.js';
import { compiled, tempDir } from './file-harness.js';
import { crashBatch, ModelStorage, modelOf, prng, type Tr } from './workload.js';

const SEED = Number(process.env['TICKRAFT_CRASH_SEED'] ?? 20240611);
const LANES = 2; // children run in parallel, each lane on its own directory
const KILLS_PER_LANE = 100;

interface ChildRun {
  ready: number | undefined;
  tried: number | undefined;
  acked: number | undefined;
  lines: string[];
  killAfterMs: number;
  early: boolean;
}

/** A booted child, waiting for "go" before it opens the directory. */
class Child {
  private readonly proc: ChildProcessByStdio<Writable, Readable, Readable>;
  readonly run: ChildRun = {
    ready: undefined,
    tried: undefined,
    acked: undefined,
    lines: [],
    killAfterMs: 0,
    early: false,
  };
  readonly booted: Promise<void>;
  readonly closed: Promise<void>;
  private onReady: () => void = () => {};
  private killed = false;

  constructor(
    dir: string,
    seed: number,
    private readonly progressFile: string,
  ) {
    this.proc = spawn(process.execPath, [compiled('tests/storage/crash-child.js'), dir, String(seed), progressFile], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let pending = '';
    let stderr = '';
    let booted!: () => void;
    this.booted = new Promise((resolve) => (booted = resolve));
    this.proc.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      pending += chunk;
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        if (line === 'booted') booted();
        else if (line === 'ready') this.onReady();
      }
    });
    this.proc.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    this.proc.stdin.on('error', () => {}); // a child killed early closes its end
    // 'close' comes after the exit and after stdout is drained: every line printed is in.
    this.closed = new Promise((resolve, reject) => {
      this.proc.on('error', reject);
      this.proc.on('close', (code, signal) => {
        if (!this.killed || signal !== 'SIGKILL')
          reject(new Error(`child ended by itself (code ${code}, signal ${signal}): ${stderr}`));
        else resolve();
      });
    });
    this.closed.catch(() => booted()); // unblock a waiter; the rejection is reported by run()
  }

  /** Lets it open the directory and SIGKILLs it after a random delay. */
  async go(rand: () => number): Promise<ChildRun> {
    await this.booted;
    // Mostly kill while it saves; sometimes early, possibly in the middle of loading and repair.
    const early = rand() < 0.15;
    const ms = early ? rand() * 40 : rand() * 25;
    Object.assign(this.run, { early, killAfterMs: ms });
    if (early) setTimeout(() => this.kill(), ms);
    else this.onReady = () => setTimeout(() => this.kill(), ms);
    this.proc.stdin.write('go\n');
    await this.closed;
    const text = await readFile(this.progressFile, 'utf8').catch(() => '');
    for (const line of text.split('\n')) {
      if (line === '') continue;
      this.run.lines.push(line);
      const [word, n] = line.split(' ');
      if (word === 'ready') this.run.ready = Number(n);
      else if (word === 'try') this.run.tried = Number(n);
      else if (word === 'ack') this.run.acked = Number(n);
    }
    return this.run;
  }

  kill(): void {
    this.killed = true;
    this.proc.kill('SIGKILL');
  }
}

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
      let next = new Child(dir, seed, progress(0));
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
          next = new Child(dir, seed, progress(k + 1));
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
