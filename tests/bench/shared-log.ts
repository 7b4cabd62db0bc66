/**
 * The shared write-ahead log against one FileStorage per group, in one run (not a test, nothing
 * asserted): `npm run build && node dist/tests/bench/shared-log.js [--groups 64] [--rounds 100]
 * [--pairs 3]`. Each round, every group saves one small batch (a hard state and one entry) and
 * the round ends when all saves have resolved, as when every group of a process has work in the
 * same tick. The two cases run alternately, `pairs` times, so that both see the same moments of a
 * noisy machine; only the ratios mean anything. Files go to a real disk (see disk.ts).
 */
import { rmSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { FileStorage, SharedLog } from '../../src/file.js';
import type { Storage } from '../../src/core/storage.js';
import { benchTemp, describeDisk } from './disk.js';

interface Cmd {
  id: string;
  key: string;
  value: string;
}

interface Figures {
  savesPerSec: number;
  fsyncsPerRound: number;
}

const { values } = parseArgs({
  options: { groups: { type: 'string' }, rounds: { type: 'string' }, pairs: { type: 'string' } },
});
const groups = Number(values.groups ?? 64);
const rounds = Number(values.rounds ?? 100);
const pairs = Number(values.pairs ?? 3);

/** Runs the rounds on the groups' storages; seconds taken. */
async function drive(storages: Storage<Cmd, unknown>[]): Promise<number> {
  await Promise.all(storages.map((s) => s.load()));
  const started = performance.now();
  for (let r = 1; r <= rounds; r++) {
    await Promise.all(
      storages.map((s, g) =>
        s.save({
          hardState: { term: 1, votedFor: 1 },
          append: [
            {
              index: r,
              term: 1,
              kind: 'transition',
              transition: { id: `${g}:${r}`, key: `k${g}`, value: 'v'.repeat(32) },
            },
          ],
        }),
      ),
    );
  }
  return (performance.now() - started) / 1000;
}

async function sharedLog(): Promise<Figures> {
  const dir = benchTemp('tickraft-bench-shared-');
  const log = new SharedLog<Cmd, unknown>(dir);
  await log.open();
  try {
    const seconds = await drive(Array.from({ length: groups }, (_, g) => log.group(g)));
    return { savesPerSec: (groups * rounds) / seconds, fsyncsPerRound: log.stats.syncs / rounds };
  } finally {
    await log.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function separateFiles(): Promise<Figures> {
  const dir = benchTemp('tickraft-bench-files-');
  const storages = Array.from({ length: groups }, (_, g) => new FileStorage<Cmd, unknown>(`${dir}/g${g}`));
  try {
    const seconds = await drive(storages);
    // Each FileStorage save is one write on a segment opened with O_DSYNC: one flush per save.
    return { savesPerSec: (groups * rounds) / seconds, fsyncsPerRound: groups };
  } finally {
    await Promise.all(storages.map((s) => s.close()));
    rmSync(dir, { recursive: true, force: true });
  }
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en');
console.log(`${groups} groups, ${rounds} rounds of one save per group, ${pairs} pairs; files in ${describeDisk()}`);
const ratios: number[] = [];
for (let p = 1; p <= pairs; p++) {
  const files = await separateFiles();
  const shared = await sharedLog();
  const ratio = shared.savesPerSec / files.savesPerSec;
  ratios.push(ratio);
  console.log(
    `pair ${p}: SharedLog ${fmt(shared.savesPerSec)} saves/s, ${shared.fsyncsPerRound.toFixed(2)} fsyncs/round; ` +
      `${groups} FileStorage ${fmt(files.savesPerSec)} saves/s, ${files.fsyncsPerRound} fsyncs/round; ` +
      `ratio ${ratio.toFixed(1)}x`,
  );
}
ratios.sort((a, b) => a - b);
console.log(`median ratio SharedLog / FileStorage per group: ${ratios[Math.floor(ratios.length / 2)]!.toFixed(1)}x`);
