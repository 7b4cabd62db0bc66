// The replicated key-value service end to end: three tickraft-kv processes (the compiled
// server in dist/, built by `npm test` before vitest runs) over real TCP, HTTP and disk.
// No fixed sleeps: every wait polls with a generous bound.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { Agent } from 'node:http';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KvClient, httpRequest } from '../../docs/examples/kv/client.js';
import { KvProcesses, waitFor } from '../../docs/examples/kv/processes.js';

const serverJs = fileURLToPath(new URL('../../dist/docs/examples/kv/server.js', import.meta.url));
const KEYS = 100;
const WAIT = 20_000;

function runServer(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number | null; stderr: string; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [serverJs, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, TICKRAFT_SECRET: '', ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), WAIT);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('tickraft-kv flags', () => {
  beforeAll(() => {
    if (!existsSync(serverJs)) throw new Error(`${serverJs} is missing: run tsc -p tsconfig.json first`);
  });

  const peers = '1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003';
  const http = '1=127.0.0.1:8001,2=127.0.0.1:8002,3=127.0.0.1:8003';
  const secret = 'a-secret-of-enough-length';
  const cases: [string, string[], RegExp][] = [
    ['no flags', [], /--id is required/],
    ['an unknown flag', ['--bogus'], /Unknown option '--bogus'/],
    [
      'a non-numeric id',
      ['--id', 'x', '--data', 'd', '--peers', peers, '--http', http, '--secret', secret],
      /--id must be an integer/,
    ],
    [
      'an id not in --peers',
      ['--id', '4', '--data', 'd', '--peers', peers, '--http', http, '--secret', secret],
      /--peers must list this replica/,
    ],
    [
      'a malformed address',
      ['--id', '1', '--data', 'd', '--peers', '1=localhost', '--http', http, '--secret', secret],
      /expected id=host:port/,
    ],
    [
      'different ids in --peers and --http',
      ['--id', '1', '--data', 'd', '--peers', peers, '--http', '1=127.0.0.1:8001', '--secret', secret],
      /same ids/,
    ],
    ['no secret', ['--id', '1', '--data', 'd', '--peers', peers, '--http', http], /--secret .* is required/],
    [
      'a short secret',
      ['--id', '1', '--data', 'd', '--peers', peers, '--http', http, '--secret', 'short'],
      /at least 16 bytes/,
    ],
    [
      'a bad election range',
      ['--id', '1', '--data', 'd', '--peers', peers, '--http', http, '--secret', secret, '--election', '300-150'],
      /maximum must be greater/,
    ],
    [
      '--join without the current members',
      [
        '--id',
        '4',
        '--data',
        'd',
        '--peers',
        '4=127.0.0.1:7004',
        '--http',
        '4=127.0.0.1:8004',
        '--secret',
        secret,
        '--join',
      ],
      /--join needs the current members/,
    ],
    [
      '--groups 0',
      ['--id', '1', '--data', 'd', '--peers', peers, '--http', http, '--secret', secret, '--groups', '0'],
      /--groups must be an integer >= 1/,
    ],
    [
      '--groups with --join',
      ['--id', '1', '--data', 'd', '--peers', peers, '--http', http, '--secret', secret, '--groups', '4', '--join'],
      /--join is not supported with --groups/,
    ],
    [
      'an election below the heartbeat',
      ['--id', '1', '--data', 'd', '--peers', peers, '--http', http, '--secret', secret, '--heartbeat', '200'],
      /greater than --heartbeat/,
    ],
  ];
  it.each(cases)('exits 2 with the usage on %s', async (_, args, message) => {
    const r = await runServer(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toContain('usage: tickraft-kv');
  });

  it('prints the usage and exits 0 on --help', async () => {
    const r = await runServer(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('usage: tickraft-kv');
  });
});

describe('a 3-process tickraft-kv cluster', () => {
  let cluster: KvProcesses;
  const agent = new Agent({ keepAlive: true, maxSockets: 16 });
  const acked = new Map<string, string>();
  const key = (i: number): string => `key${String(i).padStart(4, '0')}`;

  beforeAll(async () => {
    cluster = await KvProcesses.create(serverJs);
    cluster.start();
  });

  afterAll(async () => {
    agent.destroy();
    await cluster?.destroy();
  });

  /** Writes keys [from, to) over 4 parallel sessions; each acknowledged write is remembered. */
  async function writeKeys(from: number, to: number, tag: string): Promise<void> {
    let next = from;
    await Promise.all(
      [0, 1, 2, 3].map(async (lane) => {
        const client = new KvClient({
          origins: cluster.origins,
          clientId: `test-${tag}-${lane}`,
          agent,
          deadline: WAIT,
        });
        for (let i = next++; i < to; i = next++) {
          await client.put(key(i), `v${i}-${tag}`);
          acked.set(key(i), `v${i}-${tag}`);
        }
      }),
    );
  }

  const logs = (): string => cluster.ids.map((id) => `--- replica ${id} ---\n${cluster.logTail(id)}`).join('\n');

  it('elects a leader and serves writes and linearizable reads', async () => {
    const leader = await cluster.waitForLeader(cluster.ids, WAIT).catch((e: Error) => {
      throw new Error(`${e.message}\n${logs()}`);
    });
    const s = await cluster.status(leader.id);
    expect(s?.status.role).toBe('leader');
    expect(s?.leader?.http).toBe(cluster.origin(leader.id));
    await writeKeys(0, KEYS, 'a');
    const reader = new KvClient({ origins: cluster.origins, clientId: 'test-reader', agent });
    expect(await reader.get(key(0))).toBe('v0-a');
    expect(await reader.get(key(KEYS - 1))).toBe(`v${KEYS - 1}-a`);
    expect(await reader.get('absent')).toBeUndefined();
  }, 60_000);

  it('redirects a follower request to the leader with 307 and Location', async () => {
    const leader = await cluster.waitForLeader(cluster.ids, WAIT);
    // Wait until a follower knows the leader too (it learns it from the heartbeats).
    const follower = await waitFor(
      'a follower that knows the leader',
      async () => {
        for (const id of cluster.ids.filter((i) => i !== leader.id)) {
          const s = await cluster.status(id);
          if (s?.status.leaderId === leader.id) return id;
        }
        return undefined;
      },
      WAIT,
    );
    const a = await httpRequest(`${cluster.origin(follower)}/kv/${key(1)}?x=1`, { method: 'GET' });
    expect(a.status).toBe(307);
    expect(a.headers.location).toBe(`${cluster.origin(leader.id)}/kv/${key(1)}?x=1`);
  });

  it('applies a retried write once (same client and sequence number)', async () => {
    const c = new KvClient({ origins: cluster.origins, clientId: 'test-dedup', agent });
    await c.command('PUT', 'dedup', 'first', 1);
    expect((await c.command('PUT', 'dedup', 'first', 1)).status).toBe(204); // a retry: the same answer
    // The same seq with another body is not a retry: refused, nothing applied.
    await expect(c.command('PUT', 'dedup', 'other', 1)).rejects.toThrow(/HTTP 409 .*different command/);
    await c.command('PUT', 'dedup', 'second', 2);
    // A late retry of seq 1 must not overwrite, nor claim success for what it did not apply.
    await expect(c.command('PUT', 'dedup', 'first', 1)).rejects.toThrow(/HTTP 409 .*seq 1 is old/);
    expect(await c.command('GET', 'dedup', undefined, 3).then((a) => a.body)).toBe('second');
    expect(await c.command('DELETE', 'dedup', undefined, 4).then((a) => a.status)).toBe(204);
    expect(await c.command('DELETE', 'dedup', undefined, 4).then((a) => a.status)).toBe(204); // retry: same answer
    expect(await c.command('GET', 'dedup', undefined, 5).then((a) => a.status)).toBe(404);
  });

  let victim = 0;
  it('survives a SIGKILL of the leader: a new leader is elected and writes continue', async () => {
    const leader = await cluster.waitForLeader(cluster.ids, WAIT);
    victim = leader.id;
    const survivors = cluster.ids.filter((id) => id !== victim);
    await cluster.kill(victim, 'SIGKILL');
    const next = await waitFor(
      'a new leader',
      async () => {
        const l = await cluster.waitForLeader(survivors, WAIT);
        return l.term > leader.term ? l : undefined;
      },
      WAIT,
    );
    expect(next.id).not.toBe(victim);
    await writeKeys(KEYS, 2 * KEYS, 'b');
    // Anonymous requests (no session headers) work too: the server makes up a session.
    const leaderOrigin = cluster.origin(next.id);
    expect((await httpRequest(`${leaderOrigin}/kv/anon`, { method: 'PUT', body: 'x' })).status).toBe(204);
    expect((await httpRequest(`${leaderOrigin}/kv/anon`)).body).toBe('x');
    acked.set('anon', 'x');
  }, 60_000);

  it('restarts the killed replica from its disk; it catches up and all replicas agree', async () => {
    cluster.spawn(victim);
    const leader = await cluster.waitForLeader(cluster.ids, WAIT);
    const target = (await cluster.status(leader.id))!.status.commitIndex;
    await waitFor(
      'every replica to apply everything',
      async () => {
        const all = await Promise.all(cluster.ids.map((id) => cluster.status(id)));
        return all.every((s) => s !== undefined && s.status.lastApplied >= target) ? true : undefined;
      },
      WAIT,
    ).catch((e: Error) => {
      throw new Error(`${e.message}\n${logs()}`);
    });
    const dumps = await Promise.all(cluster.ids.map((id) => cluster.dump(id)));
    for (const d of dumps) expect(d.data).toEqual(dumps[0]!.data);
    expect(acked.size).toBe(2 * KEYS + 1);
    for (const [k, v] of acked) expect(dumps[0]!.data[k], k).toBe(v);
    expect(Object.keys(dumps[0]!.data).length).toBe(acked.size);
  }, 60_000);

  it('shuts down gracefully on SIGTERM', async () => {
    const codes = await cluster.stopAll();
    expect([...codes.values()]).toEqual([0, 0, 0]);
  }, 30_000);
});
