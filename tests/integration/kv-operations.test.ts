// Operating tickraft-kv: GET /metrics on a 3-process cluster (the leader's series are found and
// agree with GET /status), the `status` subcommand's table, JSON logs on stdout, --version, and
// one-line fatal errors naming the offending value. Real processes, sockets and files; every
// child is killed at the end.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KvClient, httpRequest } from '../../docs/examples/kv/client.js';
import { parseFlags, UsageError } from '../../docs/examples/kv/flags.js';
import { KvProcesses, waitFor } from '../../docs/examples/kv/processes.js';

const serverJs = fileURLToPath(new URL('../../dist/docs/examples/kv/server.js', import.meta.url));
const WAIT = 30_000;

/** The value of the one sample of `name` whose labels include every `labels` pair. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return undefined;
}

function run(args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, [serverJs, ...args], { encoding: 'utf8', timeout: 20_000 });
}

describe('operating a 3-process tickraft-kv cluster', { timeout: 30_000 }, () => {
  let cluster: KvProcesses;
  let leader: { id: number; term: number };

  beforeAll(async () => {
    if (!existsSync(serverJs)) throw new Error(`${serverJs} is missing: run tsc -p tsconfig.json first`);
    // These tests read one leader's view: election timeouts of 1-2 s keep that leader through the
    // event-loop stalls of a loaded machine (at 150-300 ms, a load average of 10 made terms of 10).
    cluster = await KvProcesses.create(serverJs, [1, 2, 3], ['--heartbeat', '100', '--election', '1000-2000']);
    cluster.start();
    leader = await cluster.waitForLeader(cluster.ids, WAIT);
    const client = new KvClient({ origins: cluster.origins, clientId: 'ops' });
    for (let i = 0; i < 5; i++) await client.put(`k${i}`, `v${i}`);
    leader = await cluster.waitForLeader(cluster.ids, WAIT);
  }, 60_000);

  afterAll(async () => {
    await cluster?.destroy();
  }, WAIT);

  it("GET /metrics serves the Prometheus text format; the leader's series say it leads", async () => {
    // A leader commits with one follower: wait until it is connected to both before reading its series.
    const followers = cluster.ids.filter((id) => id !== leader.id);
    await waitFor(
      'the leader connected to every follower',
      async () => {
        const text = (await httpRequest(`${cluster.origin(leader.id)}/metrics`)).body;
        return followers.every((peer) => sample(text, 'tickraft_peer_connected', { peer: String(peer) }) === 1)
          ? true
          : undefined;
      },
      WAIT,
    );
    const texts = await Promise.all(
      cluster.ids.map(async (id) => {
        const a = await httpRequest(`${cluster.origin(id)}/metrics`);
        expect(a.status).toBe(200);
        expect(String(a.headers['content-type'])).toMatch(/^text\/plain; version=0\.0\.4/);
        return [id, a.body] as const;
      }),
    );
    const leaders = texts.filter(
      ([id, t]) => sample(t, 'tickraft_role', { replica: String(id), role: 'leader' }) === 1,
    );
    expect(leaders.map(([id]) => id)).toEqual([leader.id]);
    const [, text] = leaders[0]!;
    const status = (await cluster.status(leader.id))!.status;
    expect(sample(text, 'tickraft_term')).toBe(status.term);
    expect(sample(text, 'tickraft_leader_id')).toBe(leader.id);
    expect(sample(text, 'tickraft_commit_index')).toBeGreaterThanOrEqual(6);
    expect(sample(text, 'tickraft_applied_index')).toBeGreaterThanOrEqual(6);
    expect(sample(text, 'tickraft_proposals_total', { outcome: 'applied' })).toBeGreaterThanOrEqual(5);
    expect(sample(text, 'tickraft_commit_latency_seconds_count')).toBeGreaterThanOrEqual(5);
    expect(sample(text, 'tickraft_storage_save_seconds_count')).toBeGreaterThan(0);
    expect(sample(text, 'tickraft_leader_changes_total')).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'tickraft_messages_out_total')).toBeGreaterThan(0);
    for (const peer of cluster.ids.filter((id) => id !== leader.id)) {
      expect(sample(text, 'tickraft_peer_connected', { peer: String(peer) })).toBe(1);
    }
    expect(sample(text, 'process_cpu_user_seconds_total')).toBeGreaterThan(0); // Node's default metrics
    for (const [id, t] of texts.filter(([id]) => id !== leader.id)) {
      expect(sample(t, 'tickraft_role', { replica: String(id), role: 'follower' })).toBe(1);
    }
  });

  it('`tickraft-kv status` prints one row per member, the leader among them', async () => {
    const address = new URL(cluster.origin(cluster.ids.find((id) => id !== leader.id)!)).host;
    const r = await new Promise<ReturnType<typeof run>>((resolve) =>
      setImmediate(() => resolve(run(['status', '--http', address]))),
    );
    expect(r.status, r.stderr).toBe(0);
    const [members, view] = r.stdout.trim().split('\n\n');
    const rows = members!.split('\n');
    expect(rows[0]).toMatch(/^ID\s+ROLE\s+TERM\s+LEADER\s+COMMIT\s+APPLIED\s+LAST-LOG\s+LAG\s+HTTP$/);
    expect(rows).toHaveLength(4);
    const leaderRow = rows.find((row) => row.startsWith(`${leader.id} `))!;
    expect(leaderRow).toMatch(/^\d+\s+leader\s+\d+\s+\d+/);
    // The leader's view: a row per follower, with its match index, lag and state.
    const lines = view!.split('\n');
    expect(lines[0]).toMatch(new RegExp(`^leader ${leader.id}, term \\d+, last log index \\d+:$`));
    expect(lines[1]).toMatch(/^FOLLOWER\s+VOTER\s+MATCH\s+LAG\s+STATE$/);
    const followers = cluster.ids.filter((id) => id !== leader.id);
    expect(lines.slice(2, 4).map((l) => Number(l.split(/\s+/)[0]))).toEqual(followers);
    for (const l of lines.slice(2, 4)) expect(l).toMatch(/^\d+\s+yes\s+\d+\s+\d+\s+(replicate|probe)$/);
    expect(lines.slice(4)).toEqual(['membership change: none', 'leadership transfer: none']);
  });

  it('logs JSON lines on stdout, each with time, level, replica and msg', async () => {
    await waitFor(
      'a leader line in the log',
      () => (cluster.logTail(leader.id).includes('leader of term') ? true : undefined),
      WAIT,
    );
    const line = cluster
      .logTail(leader.id)
      .split('\n')
      .find((l) => l.includes('leader of term'))!;
    const entry = JSON.parse(line) as Record<string, unknown>;
    expect(entry).toMatchObject({ level: 30, replica: leader.id });
    expect(entry.msg).toMatch(/^leader of term \d+$/);
    expect(new Date(entry.time as string).toISOString()).toBe(entry.time);
    // The replica's own lines come through the same logger, marked as the library's.
    const own = cluster
      .logTail(leader.id, 200)
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((e) => e.msg === 'became leader');
    expect(own).toMatchObject({ component: 'raft', replica: leader.id, role: 'leader', previous: 'candidate' });
  });
});

describe('tickraft-kv on the command line', { timeout: 30_000 }, () => {
  it('--version prints the package version', () => {
    const r = run(['--version']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^tickraft-kv \d+\.\d+\.\d+\n$/);
  });

  it('--help lists every flag and an example', () => {
    const r = run(['--help']);
    for (const flag of [
      '--id',
      '--data',
      '--peers',
      '--http',
      '--secret',
      '--heartbeat',
      '--election',
      '--snapshot-delta',
      '--fsync',
      '--send-before-save',
      '--timeout',
      '--groups',
      '--join',
      '--log-level',
      '--quiet',
      '--help',
      '--version',
      'status --http',
      'example',
      '1 MiB',
    ]) {
      expect(r.stdout).toContain(flag);
    }
  });

  it('--send-before-save is on unless turned off, and takes only on or off', () => {
    const required = ['--id', '1', '--data', 'd', '--peers', '1=127.0.0.1:7001', '--http', '1=127.0.0.1:8001'];
    const flags = (...more: string[]) =>
      parseFlags([...required, ...more], { TICKRAFT_SECRET: 'a secret of 16+ bytes' });
    expect(flags()).toMatchObject({ sendBeforeSave: true, fsync: true });
    expect(flags('--send-before-save', 'off')).toMatchObject({ sendBeforeSave: false });
    expect(() => flags('--send-before-save', 'yes')).toThrow(UsageError);
    expect(() => flags('--send-before-save', 'yes')).toThrow('--send-before-save must be on or off, got "yes"');
  });

  it('a bad --log-level exits 2 naming the value', () => {
    const r = run(['--log-level', 'loud']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--log-level must be one of .* got "loud"/);
  });

  it('a port in use is one line on stderr naming the flag and the address, and exit 1', async () => {
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const port = (busy.address() as { port: number }).port;
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = mkdtempSync(join(tmpdir(), 'tickraft-ops-'));
    try {
      const r = await new Promise<ReturnType<typeof run>>((resolve) =>
        setImmediate(() =>
          resolve(
            run([
              '--id',
              '1',
              '--data',
              dir,
              '--peers',
              `1=127.0.0.1:${port}`,
              '--http',
              '1=127.0.0.1:1',
              '--secret',
              'a long shared secret for tests',
            ]),
          ),
        ),
      );
      expect(r.status, r.stderr).toBe(1);
      const lines = r.stderr.trim().split('\n');
      expect(lines, r.stderr).toHaveLength(1);
      expect(lines[0]).toMatch(
        new RegExp(`ERROR cannot listen on --peers 1=127\\.0\\.0\\.1:${port} \\(raft\\): the port is in use$`),
      );
    } finally {
      busy.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
