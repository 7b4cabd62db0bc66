// The TCP demo (`npm run demo`): three tickraft-kv server processes on loopback, each with
// its own data directory. It writes 1,000 keys over HTTP, SIGKILLs the leader and times the
// failover, writes 1,000 more, restarts the killed server from its disk, and checks that all
// three hold the same data and that no acknowledged write was lost. Last, a membership change:
// a 4th process joins (POST /members on the leader), catches up and is removed again.
// `npm run demo -- --groups N` runs the sharded demo of demo-groups.ts instead.
import { Agent } from 'node:http';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { KvClient } from './client.js';
import { shardedDemo } from './demo-groups.js';
import { KvProcesses, waitFor } from './processes.js';

let demoGroups = 1;
try {
  const { values } = parseArgs({ options: { groups: { type: 'string' } } });
  demoGroups = Number(values.groups ?? '1');
  if (!Number.isSafeInteger(demoGroups) || demoGroups < 1) throw new Error('--groups must be a positive integer');
} catch (error) {
  console.error(`usage: npm run demo [-- --groups <n>]: ${(error as Error).message}`);
  process.exit(2);
}
const serverJs = fileURLToPath(new URL('./server.js', import.meta.url));
if (demoGroups > 1) process.exit(await shardedDemo(serverJs, demoGroups));

const KEYS = Number(process.env.KEYS ?? 1000);
const LANES = 8; // requests in flight: one client session each, so each session stays sequential
const t0 = Date.now();
const elapsed = (): string => `${((Date.now() - t0) / 1000).toFixed(2).padStart(6)} s`;
const say = (what: string): void => console.log(`[${elapsed()}] ${what}`);
const failures: string[] = [];
const check = (ok: boolean, what: string): void => {
  console.log(`  ${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures.push(what);
};

const cluster = await KvProcesses.create(serverJs);
let cleaned = false;
async function cleanup(): Promise<void> {
  if (cleaned) return;
  cleaned = true;
  await cluster.destroy();
}
process.on('exit', () => cluster.killAllNow());
process.on('SIGINT', () => {
  console.log('\ninterrupted: stopping the servers');
  void cleanup().finally(() => process.exit(130));
});
process.on('SIGTERM', () => {
  void cleanup().finally(() => process.exit(143));
});

const agent = new Agent({ keepAlive: true, maxSockets: LANES * 2 });
const runId = Math.random().toString(36).slice(2, 8);
const acked = new Map<string, string>();
const keyName = (i: number): string => `key${String(i).padStart(5, '0')}`;

/** Writes keys [from, from + count) with LANES sessions in parallel; returns the writes per second. */
async function writeKeys(from: number, count: number, label: string): Promise<number> {
  const started = Date.now();
  let next = from;
  let done = 0;
  const tty = process.stdout.isTTY === true;
  const draw = (): void => {
    if (tty) {
      const width = 30;
      const filled = Math.round((done / count) * width);
      const rate = done / Math.max(0.001, (Date.now() - started) / 1000);
      process.stdout.write(
        `\r  ${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(done).padStart(5)}/${count} keys, ${rate.toFixed(0)} writes/s `,
      );
    } else if (done % 250 === 0 || done === count) {
      console.log(`  ${label}: ${done}/${count} keys written`);
    }
  };
  await Promise.all(
    Array.from({ length: LANES }, async (_, lane) => {
      const client = new KvClient({ origins: cluster.origins, clientId: `demo-${runId}-${label}-${lane}`, agent });
      for (let i = next++; i < from + count; i = next++) {
        const key = keyName(i);
        const value = `value-${i}-${runId}`;
        await client.put(key, value);
        acked.set(key, value);
        done++;
        if (!tty || done % 10 === 0 || done === count) draw();
      }
    }),
  );
  if (tty) process.stdout.write('\n');
  return count / ((Date.now() - started) / 1000);
}

async function main(): Promise<void> {
  console.log(`tickraft TCP demo: 3 tickraft-kv processes on 127.0.0.1, data in ${cluster.dir}\n`);
  cluster.start();
  const first = await cluster.waitForLeader();
  say(`replica ${first.id} leads (term ${first.term})`);

  const rate1 = await writeKeys(0, KEYS, 'batch 1');
  say(`wrote ${KEYS} keys: ${rate1.toFixed(0)} writes/s`);

  const victim = (await cluster.waitForLeader()).id;
  const oldTerm = (await cluster.status(victim))?.status.term ?? 0;
  const survivors = cluster.ids.filter((id) => id !== victim);
  const killedAt = Date.now();
  await cluster.kill(victim, 'SIGKILL');
  say(`SIGKILL the leader, replica ${victim}`);
  const next = await waitFor(
    'a new leader',
    async () => {
      const l = await cluster.waitForLeader(survivors, 20_000, 5);
      return l.term > oldTerm ? l : undefined;
    },
    20_000,
    5,
  );
  const leaderMs = Date.now() - killedAt;
  say(`replica ${next.id} leads (term ${next.term}), ${leaderMs} ms after the kill`);
  const probe = new KvClient({
    origins: survivors.map((id) => cluster.origin(id)),
    clientId: `demo-${runId}-probe`,
    agent,
  });
  const probeKey = keyName(KEYS);
  await probe.put(probeKey, `value-${KEYS}-${runId}`);
  acked.set(probeKey, `value-${KEYS}-${runId}`);
  const writeMs = Date.now() - killedAt;
  say(`first write after the kill succeeded ${writeMs} ms after the kill`);

  const rate2 = await writeKeys(KEYS + 1, KEYS - 1, 'batch 2');
  say(`wrote ${KEYS} more keys (with the one above): ${rate2.toFixed(0)} writes/s on two replicas`);

  const leaderNow = await cluster.waitForLeader(survivors);
  const target = (await cluster.status(leaderNow.id))!.status.commitIndex;
  const restartedAt = Date.now();
  cluster.spawn(victim);
  say(`restart replica ${victim} from its data directory; the leader has committed through index ${target}`);
  const caughtUp = await waitFor(`replica ${victim} to catch up`, async () => {
    const s = await cluster.status(victim);
    return s && s.status.lastApplied >= target ? s : undefined;
  });
  const recoveryMs = Date.now() - restartedAt;
  say(
    `replica ${victim} caught up to index ${caughtUp.status.lastApplied} in ${recoveryMs} ms (snapshots installed: ${caughtUp.metrics.snapshotsInstalled ?? 0})`,
  );

  console.log('\nchecks:');
  const reader = new KvClient({ origins: cluster.origins, clientId: `demo-${runId}-reader`, agent });
  const sample = [0, 1, KEYS - 1, KEYS, KEYS + 1, 2 * KEYS - 1].map(keyName);
  let readsOk = true;
  for (const k of sample) if ((await reader.get(k)) !== acked.get(k)) readsOk = false;
  check(
    readsOk,
    `linearizable reads (read index, no log write) return the acknowledged values (${sample.length} keys)`,
  );

  const finalTarget = (await cluster.status((await cluster.waitForLeader()).id))!.status.commitIndex;
  await waitFor('every replica to apply everything', async () => {
    const all = await Promise.all(cluster.ids.map((id) => cluster.status(id)));
    return all.every((s) => s !== undefined && s.status.lastApplied >= finalTarget) ? true : undefined;
  });
  const dumps = await Promise.all(cluster.ids.map((id) => cluster.dump(id)));
  const canonical = (d: Record<string, string>): string =>
    JSON.stringify(Object.entries(d).sort(([a], [b]) => (a < b ? -1 : 1)));
  for (const d of dumps)
    console.log(
      `  replica ${d.id}: ${Object.keys(d.data).length} keys, applied through index ${d.lastApplied}, snapshots installed ${d.snapshotsInstalled}`,
    );
  check(
    dumps.every((d) => canonical(d.data) === canonical(dumps[0]!.data)),
    'all three replicas hold identical data',
  );
  const lost = [...acked].filter(([k, v]) => dumps.some((d) => d.data[k] !== v));
  check(
    acked.size === 2 * KEYS && lost.length === 0,
    `no acknowledged write lost (${acked.size} acknowledged, ${lost.length} missing or different)`,
  );
  check(Object.keys(dumps[0]!.data).length === 2 * KEYS, `exactly ${2 * KEYS} keys stored`);

  console.log('\nmembership:');
  const joiner = 4;
  await cluster.prepareJoin(joiner);
  const joinedAt = Date.now();
  cluster.spawn(joiner);
  say(`start replica ${joiner} with --join; POST /members {"id":${joiner},...} to the leader`);
  await cluster.leaderRequest('POST', '/members', cluster.joinBody(joiner), [1, 2, 3]);
  const joinTarget = (await cluster.status((await cluster.waitForLeader([1, 2, 3])).id))!.status.commitIndex;
  const joined = await waitFor(`replica ${joiner} to catch up`, async () => {
    const s = await cluster.status(joiner);
    return s && s.status.lastApplied >= joinTarget ? s : undefined;
  });
  say(
    `replica ${joiner} is a voting member (${JSON.stringify(joined.membership)}), caught up to index ${joined.status.lastApplied} in ${Date.now() - joinedAt} ms (snapshots installed: ${joined.metrics.snapshotsInstalled ?? 0})`,
  );
  const joinedDump = await cluster.dump(joiner);
  check(
    canonical(joinedDump.data) === canonical(dumps[0]!.data),
    `replica ${joiner} holds the same ${Object.keys(joinedDump.data).length} keys`,
  );
  await cluster.leaderRequest('DELETE', `/members/${joiner}`, undefined, [1, 2, 3]);
  const after = await cluster.status((await cluster.waitForLeader([1, 2, 3])).id);
  say(`DELETE /members/${joiner}: the membership is ${JSON.stringify(after?.membership)} again`);
  check((await cluster.kill(joiner, 'SIGTERM')) === 0, `removed replica ${joiner} stopped gracefully`);
  cluster.forget(joiner);

  const codes = await cluster.stopAll();
  check(
    [...codes.values()].every((c) => c === 0),
    `graceful shutdown on SIGTERM (exit codes ${[...codes.values()].join(', ')})`,
  );

  console.log('\nsummary:');
  console.log(`  keys written:     ${acked.size} (${KEYS} before the failover, ${KEYS} after)`);
  console.log(
    `  write throughput: ${rate1.toFixed(0)} writes/s on 3 replicas, ${rate2.toFixed(0)} writes/s on 2 (${LANES} in flight, fsync on)`,
  );
  console.log(`  failover:         new leader ${leaderMs} ms after SIGKILL, first write ${writeMs} ms after`);
  console.log(
    `  recovery:         restarted replica ${victim} reloaded its disk and caught up to index ${caughtUp.status.lastApplied} in ${recoveryMs} ms (${caughtUp.metrics.snapshotsInstalled ?? 0} snapshot(s) installed)`,
  );
  console.log(`  total:            ${elapsed().trim()}`);
}

try {
  await main();
} catch (error) {
  failures.push(String(error));
  console.error(`\nerror: ${(error as Error)?.stack ?? String(error)}`);
  for (const id of cluster.ids) console.error(`\n--- last lines of replica ${id} ---\n${cluster.logTail(id)}`);
}
agent.destroy();
await cleanup();
console.log(
  failures.length === 0 ? '\nOK: every check passed' : `\nFAILED: ${failures.length} check(s): ${failures.join('; ')}`,
);
process.exit(failures.length === 0 ? 0 : 1);
