// Flow control by bytes, end to end: three tickraft-kv processes (the compiled server in dist/),
// one follower stopped (SIGSTOP) while 70 values of 1 MiB (tickraft-kv's largest) are written,
// then resumed. It must catch up within seconds, with no leader change, and no member may use
// more than RSS_BOUND of memory at any time. Before flow control by bytes, the same run applied
// nothing in 45 s, sent gigabytes, reached 9 GB of RSS and changed leaders several times.
//
// The election timeout is raised from the default 150-300 ms to 1.5-3 s: the test machine is
// shared (load averages near 20 on 2 cores were seen), and there a process can go unscheduled,
// or wait on a contended disk, for over 300 ms whatever it does, which would make a leader change
// a property of the machine rather than of the code. The longest save and event-loop block of
// each member are printed (GET /status, `longest`), to show what holds up a tick.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpRequest } from '../../docs/examples/kv/client.js';
import { KvProcesses, waitFor } from '../../docs/examples/kv/processes.js';

const serverJs = fileURLToPath(new URL('../../dist/docs/examples/kv/server.js', import.meta.url));
const WAIT = 30_000;
const VALUES = 70;
const VALUE_BYTES = 1024 * 1024;
/** No member may exceed this resident set size (MiB), sampled every 20 ms and checked against the kernel's peak. */
const RSS_BOUND_MIB = 1024;

/** A member's resident set size now and at its peak, in MiB, from /proc (zero once it has exited). */
function memoryOf(pid: number): { rss: number; peak: number } {
  let status = '';
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return { rss: 0, peak: 0 };
  }
  const kib = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: kib('VmRSS') / 1024, peak: kib('VmHWM') / 1024 };
}

describe('a follower that falls behind on big entries', () => {
  let cluster: KvProcesses;
  const agent = new Agent({ keepAlive: true, maxSockets: 16 });

  beforeAll(async () => {
    if (!existsSync(serverJs)) throw new Error(`${serverJs} is missing: run tsc -p tsconfig.json first`);
    const flags = ['--quiet', '--heartbeat', '100', '--election', '1500-3000'];
    cluster = await KvProcesses.create(serverJs, [1, 2, 3], flags);
    cluster.start();
  });

  afterAll(async () => {
    agent.destroy(); // destroy() kills with SIGKILL, which ends a stopped process too
    await cluster?.destroy();
  });

  it('catches up on 70 × 1 MiB in seconds, with no leader change and every member under the RSS bound', async () => {
    const leader = await cluster.waitForLeader(cluster.ids, WAIT);
    const before = await Promise.all(cluster.ids.map((id) => cluster.status(id)));
    const pids = new Map(before.map((s) => [s!.status.id, (s as unknown as { pid: number }).pid]));
    const elections = (all: typeof before): number => all.reduce((n, s) => n + (s?.metrics.electionsStarted ?? 0), 0);
    const follower = cluster.ids.find((id) => id !== leader.id)!;

    // Sample every member's memory throughout (the kernel's peak, VmHWM, is checked at the end
    // too); past the bound the cluster is killed at once, so a regression cannot exhaust the machine.
    let worst = { id: 0, rss: 0 };
    const checkMemory = (): void => {
      if (worst.rss <= RSS_BOUND_MIB) return;
      throw new Error(`replica ${worst.id} reached ${Math.round(worst.rss)} MiB of RSS (bound ${RSS_BOUND_MIB})`);
    };
    const sampler = setInterval(() => {
      for (const [id, pid] of pids) {
        const { rss } = memoryOf(pid);
        if (rss > worst.rss) worst = { id, rss };
      }
      if (worst.rss > RSS_BOUND_MIB) cluster.killAllNow();
    }, 20);
    try {
      process.kill(pids.get(follower)!, 'SIGSTOP');
      const filler = randomBytes(VALUE_BYTES / 2).toString('hex');
      const value = (i: number): string => `${String(i).padStart(4, '0')}${filler.slice(4)}`;
      const put = (i: number): ReturnType<typeof httpRequest> =>
        httpRequest(`${cluster.origin(leader.id)}/kv/big${i}`, { method: 'PUT', body: value(i), agent, timeout: WAIT });
      const answers = await Promise.all(Array.from({ length: VALUES }, (_, i) => put(i))).catch((error: unknown) => {
        checkMemory();
        throw error;
      });
      checkMemory();
      const logs = (): string => cluster.ids.map((id) => `--- ${id} ---\n${cluster.logTail(id, 40)}`).join('\n');
      expect(
        answers.map((a) => a.status),
        logs(),
      ).toEqual(Array<number>(VALUES).fill(204));
      const target = (await cluster.status(leader.id))!.status.commitIndex;

      process.kill(pids.get(follower)!, 'SIGCONT');
      const resumed = Date.now();
      await waitFor(
        'the stopped follower to apply every value',
        async () => {
          checkMemory();
          const s = await cluster.status(follower);
          return s !== undefined && s.status.lastApplied >= target ? true : undefined;
        },
        WAIT,
        20,
      );
      const catchUpMs = Date.now() - resumed;

      const after = await Promise.all(cluster.ids.map((id) => cluster.status(id)));
      for (const s of after) expect(s?.status).toMatchObject({ term: leader.term, leaderId: leader.id });
      expect(elections(after)).toBe(elections(before));
      const dump = await cluster.dump(follower);
      for (let i = 0; i < VALUES; i++) expect(dump.data[`big${i}`] === value(i), `big${i}`).toBe(true);

      const peaks = new Map([...pids].map(([id, pid]) => [id, Math.round(memoryOf(pid).peak)]));
      const longestOf = (s: (typeof after)[number]): unknown => (s as unknown as { longest: unknown }).longest;
      const longest = Object.fromEntries(after.map((s) => [s!.status.id, longestOf(s)]));
      console.log(
        `lagging follower ${follower}: caught up on ${VALUES} × 1 MiB in ${catchUpMs} ms; ` +
          `peak RSS (MiB) by replica: ${JSON.stringify(Object.fromEntries(peaks))}; ` +
          `leader ${leader.id} kept term ${leader.term}; ` +
          `longest save and event-loop block (ms; the stopped one's includes its stop): ${JSON.stringify(longest)}`,
      );
      for (const [id, peak] of peaks) expect(peak, `peak RSS of replica ${id}`).toBeLessThan(RSS_BOUND_MIB);
    } finally {
      clearInterval(sampler);
    }
  }, 90_000);
});
