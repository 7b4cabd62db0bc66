// tickraft-kv --groups: three processes (the compiled server in dist/, built by `npm test`
// before vitest runs), 8 groups, one SharedLog each with fsync on. The process leading the most
// groups is SIGKILLed under writes: every group elects a leader on the others and commits again,
// the killed process restarts from its log, and no acknowledged write is lost. No fixed sleeps:
// every wait polls for a condition with a generous bound.
import { Agent } from 'node:http';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpRequest } from '../../docs/examples/kv/client.js';
import { KvProcesses, waitFor } from '../../docs/examples/kv/processes.js';
import type { ShardedStatus } from '../../docs/examples/kv/sharded.js';
import {
  Writers,
  groupLeaders,
  lostWrites,
  waitForAgreement,
  waitForGroupLeaders,
} from '../../docs/examples/kv/sharded-workload.js';
import { groupOf, keyInGroup, membersOf } from '../../docs/examples/kv/shards.js';
import { statusCommand } from '../../docs/examples/kv/status.js';

const serverJs = fileURLToPath(new URL('../../dist/docs/examples/kv/server.js', import.meta.url));
const GROUPS = 8;
const WAIT = 30_000;

/** Every process's status, once all answer: a slow one may still be starting when the others have elected. */
function everyStatus(cluster: KvProcesses): Promise<ShardedStatus[]> {
  return waitFor(
    'every process to answer',
    async () => {
      const all = await Promise.all(cluster.ids.map((id) => cluster.status<ShardedStatus>(id)));
      return all.every((s) => s !== undefined) ? (all as ShardedStatus[]) : undefined;
    },
    WAIT,
  );
}

describe('placement of keys and groups (shards.ts)', () => {
  it('hashes a key with 32-bit FNV-1a, modulo the number of groups', () => {
    // FNV-1a of "" is the offset basis 0x811c9dc5; of "a", 0xe40c292c.
    expect(groupOf('', 1000)).toBe(0x811c9dc5 % 1000);
    expect(groupOf('a', 1000)).toBe(0xe40c292c % 1000);
    expect(groupOf('a', 1)).toBe(0);
    expect(groupOf(keyInGroup(5, GROUPS, 'k'), GROUPS)).toBe(5);
  });

  it('places group g on the processes g, g+1, g+2 modulo the count, and on all of 3 or fewer', () => {
    expect(membersOf(0, [3, 1, 2])).toEqual([1, 2, 3]);
    expect(membersOf(7, [1, 2])).toEqual([1, 2]);
    expect(membersOf(0, [1, 2, 3, 4, 5])).toEqual([1, 2, 3]);
    expect(membersOf(4, [5, 4, 3, 2, 1])).toEqual([5, 1, 2]);
  });
});

describe(`tickraft-kv --groups ${GROUPS} on 3 processes`, () => {
  let cluster: KvProcesses;
  let writers: Writers;
  let victim = 0;
  const agent = new Agent({ keepAlive: true, maxSockets: 32 });
  const logs = (): string => cluster.ids.map((id) => `--- process ${id} ---\n${cluster.logTail(id)}`).join('\n');
  const withLogs = (e: Error): never => {
    throw new Error(`${e.message}\n${logs()}`);
  };

  beforeAll(async () => {
    cluster = await KvProcesses.create(serverJs, [1, 2, 3], ['--groups', String(GROUPS)]);
    writers = new Writers(cluster.origins, { groups: GROUPS, lanes: 4, keysPerLane: 40, prefix: 'groups', agent });
    cluster.start();
  });

  afterAll(async () => {
    await writers?.stop();
    agent.destroy();
    await cluster?.destroy();
  });

  it("elects a leader in every group; a process that does not lead a key's group redirects to its leader", async () => {
    await waitForGroupLeaders(cluster, GROUPS, cluster.ids, WAIT).catch(withLogs);
    const s = (await everyStatus(cluster))[0]!;
    expect(s.groups).toBe(GROUPS);
    expect(s.hosted).toBe(GROUPS);
    expect(s.leaders.split(',')).toHaveLength(GROUPS);
    // `tickraft-kv status`: one row per process, found through one address.
    let table = '';
    const out = new Writable({
      write(chunk, _encoding, done) {
        table += String(chunk);
        done();
      },
    });
    expect(await statusCommand(['--http', cluster.origin(1).slice('http://'.length)], out)).toBe(0);
    expect(table).toMatch(/^ID +GROUPS +LEADING +NO-LEADER +QUIESCENT +HTTP\n1 +8 /);
    expect(table.trimEnd().split('\n')).toHaveLength(4);
    // Leaders move (balanceLeaders): poll until a non-leader's answer names the leader of the moment.
    const key = keyInGroup(3, GROUPS, 'route-');
    await waitFor(
      "a 307 to the group's leader",
      async () => {
        const leader = (await groupLeaders(cluster, GROUPS))[3];
        const other = cluster.ids.find((id) => id !== leader);
        if (leader === undefined || other === undefined) return undefined;
        const a = await httpRequest(`${cluster.origin(other)}/kv/${key}`, { method: 'PUT', body: 'x' });
        const redirected = a.status === 307 && a.headers.location === `${cluster.origin(leader)}/kv/${key}`;
        return redirected && a.headers['x-kv-outcome'] === 'not-applied' ? true : undefined;
      },
      WAIT,
    );
  }, 60_000);

  it('serves every group through a SIGKILL of the process leading the most groups, under writes', async () => {
    writers.start();
    await waitFor('100 acknowledged writes', () => (writers.acks >= 100 ? true : undefined), WAIT).catch(withLogs);
    const leaders = await groupLeaders(cluster, GROUPS);
    const led = (id: number): number => leaders.filter((l) => l === id).length;
    victim = [...cluster.ids].sort((a, b) => led(b) - led(a))[0]!;
    await cluster.kill(victim, 'SIGKILL');
    const acksAtKill = writers.acks;
    const survivors = cluster.ids.filter((id) => id !== victim);
    const after = await waitForGroupLeaders(cluster, GROUPS, survivors, WAIT).catch(withLogs);
    expect(after.every((l) => survivors.includes(l))).toBe(true);
    // Every group commits again: one write into each, acknowledged.
    const probes = await Promise.all(
      Array.from({ length: GROUPS }, (_, g) =>
        writers.write(writers.client(`probe${g}`), keyInGroup(g, GROUPS, 'probe-'), 'after the kill'),
      ),
    );
    expect(probes).toEqual(Array.from({ length: GROUPS }, () => true));
    await waitFor('100 writes acknowledged after the kill', () =>
      writers.acks >= acksAtKill + 100 ? true : undefined,
    ).catch(withLogs);
  }, 90_000);

  it('restarts the killed process from its log; every group agrees and no acknowledged write is lost', async () => {
    cluster.spawn(victim);
    await waitFor(
      `process ${victim} to serve again`,
      async () => ((await cluster.status<ShardedStatus>(victim))?.hosted === GROUPS ? true : undefined),
      WAIT,
    ).catch(withLogs);
    const acksAtRestart = writers.acks;
    await waitFor('50 writes acknowledged after the restart', () =>
      writers.acks >= acksAtRestart + 50 ? true : undefined,
    ).catch(withLogs);
    await writers.stop();
    const dumps = await waitForAgreement(cluster, GROUPS, WAIT).catch(withLogs);
    expect(lostWrites(dumps, GROUPS, writers)).toEqual([]);
    expect(writers.acked.size).toBeGreaterThan(GROUPS);
    // Linearizable reads of a few keys, through any process (redirected to each group's leader).
    const reader = writers.client('reader');
    const known = [...writers.acked].filter(([k]) => !writers.unknown.has(k)).slice(0, 20);
    for (const [k, v] of known) expect(await reader.get(k), k).toBe(v);
  }, 90_000);

  it('shuts down gracefully on SIGTERM, and refuses to restart with another --groups', async () => {
    const codes = await cluster.stopAll();
    expect([...codes.values()]).toEqual([0, 0, 0]);
    const args = cluster.args(1).map((a, i, all) => (all[i - 1] === '--groups' ? '4' : a));
    cluster.spawn(1, args);
    expect(await cluster.exitCode(1)).toBe(1);
    expect(cluster.logTail(1)).toContain('--groups, which must not change');
  }, 60_000);
});

describe('tickraft-kv --groups 5 on 5 processes: each group on 3 of them', () => {
  let cluster: KvProcesses;
  const agent = new Agent({ keepAlive: true, maxSockets: 16 });

  beforeAll(async () => {
    cluster = await KvProcesses.create(serverJs, [1, 2, 3, 4, 5], ['--groups', '5']);
    cluster.start();
  });

  afterAll(async () => {
    agent.destroy();
    await cluster?.destroy();
  });

  it("hosts 3 groups per process; a process that does not host a key's group redirects to one that does", async () => {
    await waitForGroupLeaders(cluster, 5, cluster.ids, WAIT);
    const all = await everyStatus(cluster);
    expect(all.map((s) => s.hosted)).toEqual([3, 3, 3, 3, 3]);
    // Group 0 is on processes 1, 2 and 3: process 5 sends the client to one of them.
    const key = keyInGroup(0, 5, 'far-');
    const a = await httpRequest(`${cluster.origin(5)}/kv/${key}`, { method: 'PUT', body: 'x' });
    expect(a.status).toBe(307);
    expect([1, 2, 3].map((id) => `${cluster.origin(id)}/kv/${key}`)).toContain(a.headers.location);
    // A client that knows nothing of the groups reaches every key through the redirects.
    const writers = new Writers(cluster.origins, { groups: 1, lanes: 2, keysPerLane: 25, prefix: 'five', agent });
    const client = writers.client('one');
    for (let i = 0; i < 25; i++) expect(await writers.write(client, `five-${i}`, `v${i}`)).toBe(true);
    for (let i = 0; i < 25; i++) expect(await client.get(`five-${i}`)).toBe(`v${i}`);
    const dumps = await waitForAgreement(cluster, 5, WAIT);
    expect(lostWrites(dumps, 5, writers)).toEqual([]);
    for (const d of dumps) expect(Object.keys(d.groups)).toHaveLength(3);
  }, 60_000);
});
