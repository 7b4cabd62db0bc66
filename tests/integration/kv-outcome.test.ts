// tickraft-kv's HTTP layer says which refusals are definite: `X-Kv-Outcome: not-applied` on a
// 307/503 means the request changed nothing; without it a write's outcome is unknown. Checked
// against a fake backend, so each case is exact.
import { createServer, type Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { httpRequest } from '../../docs/examples/kv/client.js';
import { kvRequestListener, type KvBackend } from '../../docs/examples/kv/http.js';
import { KvNotLeader, type KvResult } from '../../docs/examples/kv/state-machine.js';

let server: Server | undefined;
afterEach(async () => {
  const s = server;
  server = undefined;
  if (s)
    await new Promise((resolve) => {
      s.closeAllConnections();
      s.close(resolve);
    });
});

/** Serves the kv API over a backend whose leadership and submit() the test decides. */
async function serve(o: { leader: boolean; submit?: () => Promise<KvResult>; knownLeader?: boolean }): Promise<string> {
  const backend: KvBackend = {
    id: 1,
    timeout: 200,
    isLeader: () => o.leader,
    leaderOrigin: () => (o.knownLeader === false ? undefined : 'http://127.0.0.1:9'),
    submit: o.submit ?? (() => Promise.resolve({ ok: true, previous: undefined })),
    read: () => Promise.resolve('v'),
    addMember: () => Promise.resolve(),
    removeMember: () => Promise.resolve(),
    transferLeadership: () => Promise.resolve(),
    status: () => ({}),
    dump: () => Promise.resolve({}),
  };
  const s = createServer(kvRequestListener(backend));
  server = s;
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(s.address() as { port: number }).port}`;
}

const put = (origin: string): ReturnType<typeof httpRequest> =>
  httpRequest(`${origin}/kv/k`, { method: 'PUT', body: 'v', headers: { 'x-client-id': 'c', 'x-client-seq': '1' } });

describe('tickraft-kv: definite and unknown outcomes', () => {
  it('marks a write refused before the log as not applied (307, or 503 with no leader known)', async () => {
    const a = await put(await serve({ leader: false }));
    expect(a.status).toBe(307);
    expect(a.headers['x-kv-outcome']).toBe('not-applied');
    await new Promise((resolve) => {
      server!.closeAllConnections();
      server!.close(resolve);
    });
    const b = await put(await serve({ leader: false, knownLeader: false }));
    expect(b.status).toBe(503);
    expect(b.headers['x-kv-outcome']).toBe('not-applied');
  });

  it('marks a write Raft abandoned as not applied', async () => {
    const abandoned = (): Promise<KvResult> => Promise.reject(new KvNotLeader('conflict-with-leader'));
    const a = await put(await serve({ leader: true, submit: abandoned }));
    expect(a.status).toBe(307);
    expect(a.headers['x-kv-outcome']).toBe('not-applied');
    expect(a.body).toMatch(/^not applied: conflict-with-leader/);
  });

  it('does not claim "not applied" when only the wait ended', async () => {
    const a = await put(
      await serve({
        leader: true,
        submit: () => Promise.reject(new KvNotLeader('the caller stopped waiting', undefined, false)),
      }),
    );
    expect(a.status).toBe(307);
    expect(a.headers['x-kv-outcome']).toBeUndefined();
    expect(a.body).toMatch(/^outcome unknown: the caller stopped waiting/);
  });

  it('times out only the writes still waiting, each after the timeout (one timer serves them all)', async () => {
    let n = 0;
    const origin = await serve({
      leader: true,
      // Every third write never settles; the others are applied after 50 ms.
      submit: () =>
        ++n % 3 === 0
          ? new Promise<KvResult>(() => undefined)
          : new Promise((resolve) => setTimeout(() => resolve({ ok: true, previous: undefined }), 50)),
    });
    const start = Date.now();
    const answers = await Promise.all(
      Array.from({ length: 9 }, (_, i) =>
        httpRequest(`${origin}/kv/k${i}`, {
          method: 'PUT',
          body: 'v',
          headers: { 'x-client-id': `c${i}`, 'x-client-seq': '1' },
        }).then((a) => ({ status: a.status, ms: Date.now() - start })),
      ),
    );
    expect(answers.filter((a) => a.status === 504)).toHaveLength(3);
    expect(answers.filter((a) => a.status === 204)).toHaveLength(6);
    // (Date.now() counts whole ms: a 200 ms wait may read 199.)
    for (const a of answers.filter((x) => x.status === 504)) expect(a.ms).toBeGreaterThanOrEqual(199);
    // Nothing waits any more: the next write is answered as usual.
    expect((await put(origin)).status).toBe(204);
  });

  it('leaves a timed-out write unknown (504, no header)', async () => {
    const a = await put(await serve({ leader: true, submit: () => new Promise<KvResult>(() => undefined) }));
    expect(a.status).toBe(504);
    expect(a.headers['x-kv-outcome']).toBeUndefined();
  });
});
