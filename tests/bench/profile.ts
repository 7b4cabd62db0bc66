/**
 * One case alone, for `node --cpu-prof`: `node --cpu-prof dist/tests/bench/profile.js inprocess 64`,
 * or `BENCH_CPU_PROF=DIR node dist/tests/bench/profile.js tcp 1024` to profile the replica processes;
 * a fourth argument `send-before-save` runs the tcp cases with the opt-in `leaderSendsBeforeSave`.
 */
import { runInProcess } from './inprocess.js';
import { runTcp } from './processes.js';

const [mode = 'inprocess', clients = '64', ms = '3000', optIn] = process.argv.slice(2);
const c = Number(clients);
const timing = { jitWarmupMs: 1000, warmupMs: 300, measureMs: Number(ms) };
const r =
  mode === 'inprocess'
    ? await runInProcess(c, timing)
    : await runTcp(mode === 'tcp' ? 'memory' : 'file', c, timing, optIn === 'send-before-save');
console.log(mode, `c${c}`, r);
