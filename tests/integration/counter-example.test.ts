// The sample app of docs/examples/counter runs as its comment says: three processes over TCP
// with fsync'd FileStorage, propose-and-wait behind HTTP, a retried request applied once, the
// leader SIGKILLed and the total intact on the others, the killed member back and caught up.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const SERVER = fileURLToPath(new URL('../../dist/docs/examples/counter/server.js', import.meta.url));
const WAIT = 20_000;

/** Whether a port on loopback is free to listen on now. */
function free(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** A base port whose six offsets (raft base+1..3, http base+101..103) are free. */
async function basePort(): Promise<number> {
  for (let tries = 0; tries < 50; tries++) {
    const base = 20_000 + Math.floor(Math.random() * 20_000);
    const ports = [1, 2, 3, 101, 102, 103].map((o) => base + o);
    if ((await Promise.all(ports.map(free))).every(Boolean)) return base;
  }
  throw new Error('no free ports');
}

let stderr = ''; // every member's, shown when a wait fails

async function until<R>(what: string, fn: () => Promise<R | undefined>): Promise<R> {
  const deadline = Date.now() + WAIT;
  for (;;) {
    const r = await fn().catch(() => undefined);
    if (r !== undefined) return r;
    if (Date.now() > deadline) throw new Error(`not within ${WAIT} ms: ${what}; stderr:\n${stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('the counter sample app (docs/examples/counter)', { timeout: 90_000 }, () => {
  const data = mkdtempSync(join(tmpdir(), 'tickraft-counter-'));
  const procs = new Map<number, ChildProcess>();
  let base = 0;
  const http = (member: number) => `http://127.0.0.1:${base + 100 + member}`;
  const start = (member: number) => {
    const child = spawn(process.execPath, [SERVER, String(member)], {
      env: {
        ...process.env,
        COUNTER_BASE_PORT: String(base),
        COUNTER_DATA: data,
        COUNTER_SECRET: 'a long shared secret for the counter test',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child.stderr!.on('data', (b: Buffer) => (stderr = (stderr + `[${member}] ${b.toString()}`).slice(-4000)));
    procs.set(member, child);
  };
  /** POSTs an add through `member`, following its redirect to the leader; the total, or undefined. */
  const add = async (member: number, amount: number, requestId: string) => {
    const res = await fetch(`${http(member)}/add/${amount}`, {
      method: 'POST',
      headers: { 'request-id': requestId },
      signal: AbortSignal.timeout(3_000),
    });
    return res.ok ? { total: Number(await res.text()), via: new URL(res.url).port } : undefined;
  };
  const total = async (member: number) => Number(await (await fetch(`${http(member)}/`)).text());

  afterAll(() => {
    for (const p of procs.values()) p.kill('SIGKILL');
    rmSync(data, { recursive: true, force: true });
  });

  it('adds through any member, applies a retried request once, and survives the leader SIGKILLed', async () => {
    base = await basePort();
    for (const m of [1, 2, 3]) start(m);
    const first = await until('a first add', () => add(1, 5, 'r1'));
    expect(first.total).toBe(5);
    const leader = Number(first.via) - base - 100;
    // The same request again (a client retrying): applied once, answered the same total.
    expect((await until('the retry', () => add(2, 5, 'r1'))).total).toBe(5);
    expect((await until('a second add', () => add(3, 3, 'r2'))).total).toBe(8);

    procs.get(leader)!.kill('SIGKILL');
    const others = [1, 2, 3].filter((m) => m !== leader);
    const after = await until('an add after the leader died', () => add(others[0]!, 2, 'r3'));
    expect(after.total).toBe(10);
    expect(Number(after.via) - base - 100).not.toBe(leader);
    for (const m of others)
      await until(`member ${m} applies it`, async () => ((await total(m)) === 10 ? true : undefined));

    start(leader); // back from its fsync'd directory: it catches up on what it missed
    await until('the restarted member catches up', async () => ((await total(leader)) === 10 ? true : undefined));
  });
});
