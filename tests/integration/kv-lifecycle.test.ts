// tickraft-kv's lifecycle and its answers to client mistakes, as real processes (the compiled
// server in dist/): startup paths fail fast in one line, SIGTERM drains in-flight requests with
// 503, a transfer to a non-member is a 4xx, an oversized body is a 413 the client receives.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpRequest, type HttpAnswer } from '../../docs/examples/kv/client.js';
import { KvProcesses, freePorts, waitFor } from '../../docs/examples/kv/processes.js';
import { KvStateMachine, type KvSnapshot } from '../../docs/examples/kv/state-machine.js';

const serverJs = fileURLToPath(new URL('../../dist/docs/examples/kv/server.js', import.meta.url));
const WAIT = 20_000;
const SECRET = 'kv-lifecycle-secret-0123456789';

/** Runs one server to its exit (SIGKILL after `WAIT`); `afterStart` may signal it. */
interface Exit {
  code: number | null;
  signal: string | null;
  stderr: string;
  stdout: string;
}

function runServer(args: string[], afterStart?: (pid: number) => void): Promise<Exit> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [serverJs, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let stdout = '';
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), WAIT);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stderr, stdout });
    });
    afterStart?.(child.pid!);
  });
}

async function singleArgs(data: string): Promise<string[]> {
  const [raft, http] = await freePorts(2);
  return [
    '--id',
    '1',
    '--data',
    data,
    '--peers',
    `1=127.0.0.1:${raft}`,
    '--http',
    `1=127.0.0.1:${http}`,
    '--secret',
    SECRET,
  ];
}

beforeAll(() => {
  if (!existsSync(serverJs)) throw new Error(`${serverJs} is missing: run tsc -p tsconfig.json first`);
});

describe('KvStateMachine.setSnapshot', () => {
  const member = { raft: { host: 'h', port: 1 }, http: { host: 'h', port: 2 } };
  const good: KvSnapshot = {
    entries: [['k', 'v']],
    sessions: [['c', { seq: 2, result: undefined }]],
    addresses: [[4, member]],
  };
  const bad: [string, unknown][] = [
    ['null data', null],
    ['no entries', { sessions: [] }],
    ['an entry that is not a pair of strings', { entries: [['k', 1]], sessions: [] }],
    ['a session without a seq', { entries: [], sessions: [['c', {}]] }],
    ['addresses that are not a list', { entries: [], sessions: [], addresses: 'x' }],
    ['an address without a port', { entries: [], sessions: [], addresses: [[4, { ...member, raft: { host: 'h' } }]] }],
  ];
  it.each(bad)('refuses %s with a TypeError and changes nothing', (_, data) => {
    const kv = new KvStateMachine();
    kv.setSnapshot({ lastIncludedIndex: 5, lastIncludedTerm: 1, data: good });
    const snapshot = { lastIncludedIndex: 9, lastIncludedTerm: 2, data: data as KvSnapshot };
    expect(() => kv.setSnapshot(snapshot)).toThrow(/unreadable snapshot/);
    expect([...kv.data]).toEqual([['k', 'v']]);
    expect(kv.appliedIndex).toBe(5);
    expect(kv.addresses.get(4)?.http.port).toBe(2);
  });
});

describe('tickraft-kv startup', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tickraft-kv-life-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const unusable: [string, () => string][] = [
    // Node's recursive mkdir used to loop there forever, deaf to SIGTERM.
    ['a directory that cannot be created (/proc/tickraft)', () => '/proc/tickraft'],
    ['a path under a regular file', () => join(dir, 'file', 'data')],
  ];
  it.each(unusable)('exits 1 at once with one line naming --data on %s', async (_, data) => {
    await writeFile(join(dir, 'file'), 'not a directory');
    const r = await runServer(await singleArgs(data()));
    expect(r.signal, r.stderr).toBeNull();
    expect(r.code, r.stderr).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`ERROR cannot use --data ${data().replace(/[/.]/g, '\\$&')}: E[A-Z]+`));
  });

  it('exits 1 with one line when another server holds the directory; SIGTERM stops the holder, exit 0', async () => {
    const args = await singleArgs(join(dir, 'held'));
    let holder!: number;
    const first = runServer(args, (pid) => {
      holder = pid;
    }); // SIGKILLed after WAIT at the latest
    try {
      const locked = (): true | undefined => (existsSync(join(dir, 'held', 'LOCK')) ? true : undefined);
      await waitFor('the first server to lock its directory', locked, WAIT);
      const second = await runServer(await singleArgs(join(dir, 'held')));
      expect(second.code, second.stderr).toBe(1);
      expect(second.stderr.trim().split('\n'), second.stderr).toHaveLength(1);
      expect(second.stderr).toMatch(/cannot use --data .*held: storage directory .* is locked by process/);
    } finally {
      process.kill(holder, 'SIGTERM');
    }
    const r = await first;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/"msg":"stopped"/); // the log: JSON lines on stdout
  });
});

/** Sends `size` bytes as the body of a PUT, in chunks, and returns the answer (or the network error). */
function bigPut(url: string, size: number): Promise<HttpAnswer | Error> {
  return new Promise((resolve) => {
    const req = request(url, { method: 'PUT', headers: { 'Content-Length': String(size) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      const body = (): string => Buffer.concat(chunks).toString('utf8');
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: body() }));
      res.on('error', resolve);
    });
    req.on('error', resolve);
    const chunk = Buffer.alloc(64 * 1024, 'x');
    for (let sent = 0; sent < size; sent += chunk.length) {
      req.write(chunk.subarray(0, Math.min(chunk.length, size - sent)));
    }
    req.end();
  });
}

describe('a tickraft-kv cluster answering mistakes and shutting down', () => {
  let cluster: KvProcesses;
  // Wide election timeouts: a leader whose followers died keeps leading (check-quorum) for seconds.
  beforeAll(async () => {
    const flags = ['--heartbeat', '100', '--election', '3000-6000', '--timeout', '15000'];
    cluster = await KvProcesses.create(serverJs, [1, 2, 3], flags);
    cluster.start();
  });
  afterAll(async () => {
    await cluster?.destroy();
  });

  it('POST /transfer/99 (no member) answers 422; a body over 1 MiB answers 413, which the client reads', async () => {
    const leader = await cluster.waitForLeader(cluster.ids, WAIT);
    const origin = cluster.origin(leader.id);
    const transfer = await httpRequest(`${origin}/transfer/99`, { method: 'POST' });
    expect(transfer.status, transfer.body).toBe(422);
    expect(transfer.body).toMatch(/replica 99 is not a voting member/);
    for (const size of [1024 * 1024 + 1, 4 * 1024 * 1024]) {
      const big = await bigPut(`${origin}/kv/big`, size);
      expect(big instanceof Error ? big.message : big.status).toBe(413);
    }
    // The server is fine afterwards.
    expect((await httpRequest(`${origin}/kv/small`, { method: 'PUT', body: 'v' })).status).toBe(204);
  }, 60_000);

  it('SIGTERM answers the reads and writes in flight with 503 and exits 0', async () => {
    const leader = await cluster.waitForLeader(cluster.ids, WAIT);
    const origin = cluster.origin(leader.id);
    // Without its followers the leader can neither commit nor confirm a read: both wait.
    for (const id of cluster.ids.filter((i) => i !== leader.id)) await cluster.kill(id, 'SIGKILL');
    const write = httpRequest(`${origin}/kv/pending`, { method: 'PUT', body: 'v', timeout: WAIT });
    const read = httpRequest(`${origin}/kv/small`, { timeout: WAIT });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const code = cluster.kill(leader.id, 'SIGTERM');
    for (const answer of [await write, await read]) {
      expect(answer.status, answer.body).toBe(503);
      expect(answer.body).toMatch(/shutting down/);
    }
    expect(await code).toBe(0);
    expect(cluster.logTail(leader.id)).toMatch(/stopped/);
  }, 60_000);
});
