// The full-disk nemesis. One member's data directory lives on a small tmpfs (4 MiB) that the
// suite fills with a ballast file, leaving a few hundred KiB; clients write large values, so the
// member soon fails to save. It must stop with a clear error (ENOSPC in its log, a non-zero
// exit) while the other four go on serving; on heal the ballast goes and the disk grows, the
// member restarts from what it had written (a torn tail is cut) and catches up.
//
// Mounting needs root (as in CI). Elsewhere the suite falls back to a fault-injecting layer
// loaded into that member's process (fs-fault.ts: its file writes fail with ENOSPC after a byte
// budget) and says so in the report's figures.
import { execFile } from 'node:child_process';
import { mkdir, rm, statfs, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { sleep } from '../../docs/examples/kv/client.js';
import type { Nemesis, RunContext } from './nemeses.js';

const run = promisify(execFile);
const FREE_BYTES = 256 * 1024;
const faultLayer = fileURLToPath(new URL('./fs-fault.js', import.meta.url));

interface DiskState {
  victim: number;
  mount?: string;
  ballast?: string;
  stopped?: boolean;
}
const states = new WeakMap<RunContext['cluster'], DiskState>();

export const diskFull: Nemesis = {
  name: 'disk-full',
  about:
    'one member on a full disk (4 MiB tmpfs, or an ENOSPC-injecting layer without root): it stops with a clear ' +
    'error, the others go on',
  async prepare(ctx) {
    const c = ctx.cluster;
    const victim = c.ids[Math.floor(ctx.rng() * c.ids.length)]!;
    const m = c.member(victim);
    const mount = `${m.dataDir}-disk`;
    await mkdir(mount, { recursive: true });
    const state: DiskState = { victim };
    states.set(c, state);
    try {
      // FAULTS_NO_MOUNT=1 tries the fallback where mounting would work.
      if (process.env.FAULTS_NO_MOUNT === '1') throw new Error('FAULTS_NO_MOUNT=1');
      await run('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mount]);
      state.mount = mount;
      m.dataDir = join(mount, 'data');
      ctx.stats['tmpfs'] = 1;
    } catch (error) {
      ctx.log(`cannot mount a tmpfs (${(error as Error).message.split('\n')[0]}); using the ENOSPC-injecting layer`);
      m.env = { NODE_OPTIONS: `--import=${faultLayer}`, FAULTS_ENOSPC_AFTER: String(FREE_BYTES) };
      ctx.stats['fault layer'] = 1;
    }
    ctx.log(`member ${victim} will run out of disk`);
  },
  async run(ctx) {
    const c = ctx.cluster;
    const state = states.get(c)!;
    await sleep(1000);
    if (state.mount) {
      const s = await statfs(state.mount);
      const free = s.bavail * s.bsize;
      state.ballast = join(state.mount, 'ballast');
      await writeFile(state.ballast, Buffer.alloc(Math.max(0, free - FREE_BYTES)));
      ctx.log(`ballast written: ${FREE_BYTES} bytes left on member ${state.victim}'s disk`);
    }
    const m = c.member(state.victim);
    const start = Date.now();
    // On a slow machine the disk may fill after the phase's end: wait for it up to 30 s longer.
    while (ctx.now() < ctx.until + 30_000 && c.running(state.victim)) await sleep(50);
    if (c.running(state.victim)) {
      const s = ((Date.now() - start) / 1000).toFixed(1);
      ctx.failures.push(`member ${state.victim} still runs after its disk filled (${s} s)`);
      return;
    }
    state.stopped = true;
    ctx.stats['stopped after s'] = Math.round((Date.now() - start) / 100) / 10;
    // A JSON log line (pino: level 50 error, 60 fatal) or a plain ERROR line on stderr.
    const why = m.log.find((l) => /(ERROR|"level":(50|60)).*(ENOSPC|no space left)/i.test(l));
    if (!why) ctx.failures.push(`member ${state.victim} stopped (${m.lastExit}) without a clear ENOSPC error`);
    else ctx.log(`member ${state.victim} stopped (${m.lastExit}): ${why.slice(0, 200)}`);
    if (m.lastExit === 'exit 0') ctx.failures.push(`member ${state.victim} exited 0 on a full disk`);
    // The others carry on: the rest of the phase measures their availability.
    while (ctx.now() < ctx.until) await sleep(100);
  },
  async heal(ctx) {
    const state = states.get(ctx.cluster)!;
    if (state.ballast) await rm(state.ballast, { force: true });
    // The rest of the cluster went on writing: what the member must catch up on may not fit in
    // 4 MiB either. A bigger disk, as an operator would give it.
    if (state.mount) await run('mount', ['-o', 'remount,size=512m', state.mount]);
    ctx.cluster.member(state.victim).env = {};
  },
  async cleanup(ctx) {
    const state = states.get(ctx.cluster);
    if (state?.mount) await run('umount', ['-l', state.mount]);
  },
};
