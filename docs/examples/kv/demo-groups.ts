// The sharded demo (`npm run demo -- --groups 64`): three `tickraft-kv --groups N` processes on
// loopback, one SharedLog each with fsync on. Client sessions write keys spread over every
// group; mid-load the process leading the most groups is SIGKILLed; the writes go on while every
// group it led elects a leader on the others; it restarts from its log; then every group is
// checked: its members agree, and every acknowledged write holds its last acknowledged value.
import { Agent } from 'node:http';
import { sleep } from './client.js';
import { KvProcesses, waitFor } from './processes.js';
import type { ShardedStatus } from './sharded.js';
import { groupLeaders, lostWrites, waitForAgreement, waitForGroupLeaders, Writers } from './sharded-workload.js';
import { keyInGroup } from './shards.js';

const LANES = 8;

/** Runs the demo with `groups` groups; resolves with the exit code. */
export async function shardedDemo(serverJs: string, groups: number): Promise<number> {
  const t0 = Date.now();
  const say = (what: string): void => console.log(`[${((Date.now() - t0) / 1000).toFixed(2).padStart(6)} s] ${what}`);
  const failures: string[] = [];
  const check = (ok: boolean, what: string): void => {
    console.log(`  ${ok ? 'ok  ' : 'FAIL'} ${what}`);
    if (!ok) failures.push(what);
  };
  // Elections a little longer than the one-group default: a 2-core machine runs 3 × N replicas.
  const cluster = await KvProcesses.create(serverJs, [1, 2, 3], ['--groups', String(groups), '--election', '300-600']);
  process.on('exit', () => cluster.killAllNow());
  const agent = new Agent({ keepAlive: true, maxSockets: 4 * LANES });
  const runId = Math.random().toString(36).slice(2, 8);
  const writers = new Writers(cluster.origins, {
    groups,
    lanes: LANES,
    keysPerLane: 200,
    prefix: `demo-${runId}`,
    agent,
  });
  try {
    console.log(`tickraft sharded demo: 3 tickraft-kv processes, ${groups} groups, data in ${cluster.dir}\n`);
    cluster.start();
    await waitForGroupLeaders(cluster, groups);
    say(`every one of the ${groups} groups has a leader; ${LANES} client sessions start writing`);
    writers.start();
    const writingSince = Date.now();
    await waitFor('1,000 acknowledged writes', () => (writers.acks >= 1000 ? true : undefined), 30_000, 20);
    await sleep(1000);

    // The victim: the process that leads the most groups now.
    const leaders = await groupLeaders(cluster, groups);
    const count = (id: number): number => leaders.filter((l) => l === id).length;
    const victim = [...cluster.ids].sort((a, b) => count(b) - count(a))[0]!;
    const orphans = leaders.flatMap((l, g) => (l === victim ? [g] : []));
    const survivors = cluster.ids.filter((id) => id !== victim);
    const acksBefore = writers.acks;
    await cluster.kill(victim, 'SIGKILL');
    const killedAt = Date.now();
    const spread = (of: (id: number) => number, ids: number[]): string => ids.map((id) => `${id}:${of(id)}`).join(' ');
    say(
      `SIGKILL process ${victim}, leader of ${orphans.length} groups (leaders per process ` +
        `${spread(count, cluster.ids)}), ${acksBefore} writes acknowledged so far`,
    );

    // One write into each group the victim led: it succeeds once the group has a leader that commits.
    const back = waitForGroupLeaders(cluster, groups, survivors).then((l) => ({ l, ms: Date.now() - killedAt }));
    const probes = await Promise.all(
      orphans.map(async (g) => {
        const client = writers.client(`probe${g}`);
        await writers.write(client, keyInGroup(g, groups, `probe-${runId}-`), 'after the kill');
        return Date.now() - killedAt;
      }),
    );
    const { l: ledAgain, ms: allLedMs } = await back;
    probes.sort((a, b) => a - b);
    const worstMs = probes[probes.length - 1] ?? 0;
    const ledBy = (id: number): number => ledAgain.filter((l) => l === id).length;
    say(
      `every group has a leader on processes ${survivors.join(' and ')} (${spread(ledBy, survivors)}), ` +
        `${allLedMs} ms after the kill; the ${orphans.length} orphaned groups committed a write within ` +
        `${worstMs} ms of the kill (median ${probes[probes.length >> 1] ?? 0} ms)`,
    );
    await sleep(1500);

    const restartedAt = Date.now();
    cluster.spawn(victim);
    say(`restart process ${victim} from its log, under load`);
    await waitFor(
      `process ${victim} to lead again (balanceLeaders)`,
      async () => ((await cluster.status<ShardedStatus>(victim))?.leading ?? 0) > 0 || undefined,
      20_000,
      50,
    );
    const backMs = Date.now() - restartedAt;
    say(`process ${victim} leads groups again, ${backMs} ms after its restart (leaders moved back by transfer)`);
    await sleep(1000);
    await writers.stop();
    const rate = writers.acks / ((Date.now() - writingSince) / 1000);
    say(`writers stopped: ${writers.acks} writes acknowledged, ${writers.failures} with an unknown outcome`);

    console.log('\nchecks:');
    const dumps = await waitForAgreement(cluster, groups);
    check(true, `the members of each of the ${groups} groups applied the same index and hold the same data`);
    const lost = lostWrites(dumps, groups, writers);
    for (const l of lost.slice(0, 10)) console.log(`       ${l}`);
    check(
      lost.length === 0,
      `no acknowledged write lost: ${writers.acked.size} keys, each with its last acknowledged value on all 3 replicas`,
    );
    const reader = writers.client('reader');
    let readsOk = 0;
    const sample = [...writers.acked].filter((_, i) => i % Math.max(1, Math.floor(writers.acked.size / 64)) === 0);
    for (const [k, v] of sample) if ((await reader.get(k)) === v) readsOk++;
    check(
      readsOk === sample.length,
      `linearizable reads (read index) of ${sample.length} keys return the acknowledged values`,
    );
    const codes = await cluster.stopAll();
    check(
      [...codes.values()].every((c) => c === 0),
      `graceful shutdown on SIGTERM (exit codes ${[...codes.values()].join(', ')})`,
    );

    console.log('\nsummary:');
    console.log(`  groups:              ${groups} on 3 processes (one RaftHost, one SharedLog with fsync each)`);
    console.log(
      `  writes acknowledged: ${writers.acks} (${writers.acked.size} keys), ${rate.toFixed(0)} writes/s ` +
        `with ${LANES} sessions, through the kill and the restart (fsync on)`,
    );
    console.log(`  killed:              process ${victim}, leader of ${orphans.length} groups, under load`);
    console.log(
      `  all groups led:      ${allLedMs} ms after the kill; orphaned groups committing within ${worstMs} ms`,
    );
    console.log(`  restart:             leading again ${backMs} ms after the restart`);
    console.log(`  check:               ${failures.length === 0 ? 'passed' : `FAILED (${failures.length})`}`);
    console.log(`  total:               ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  } catch (error) {
    failures.push(String(error));
    console.error(`\nerror: ${(error as Error)?.stack ?? String(error)}`);
    for (const id of cluster.ids) console.error(`\n--- last lines of process ${id} ---\n${cluster.logTail(id, 15)}`);
  }
  await writers.stop();
  agent.destroy();
  await cluster.destroy();
  console.log(
    failures.length === 0
      ? '\nOK: every check passed'
      : `\nFAILED: ${failures.length} check(s): ${failures.join('; ')}`,
  );
  return failures.length === 0 ? 0 : 1;
}
