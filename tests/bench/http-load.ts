/**
 * The HTTP side of the kv mode, as child processes of the bench (forked with an IPC channel):
 *
 * - `ceiling`: a bare `node:http` server that reads each request's body and answers an empty
 *   204: the most this machine's Node.js can answer, the ceiling of the service figures;
 * - `load <json>`: the load generator, autocannon driven programmatically, in a process of its
 *   own so it does not share an event loop with what it measures (on a 2-core machine it still
 *   shares the cores: with everyone alike, the kv cluster and the ceiling). Latency and rate are
 *   taken from autocannon's per-response events over our own window after a warm-up, with
 *   sub-millisecond precision (its own histogram keeps whole milliseconds).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';

/** What the parent asks of one load run. */
export interface LoadConfig {
  url: string;
  method: 'GET' | 'PUT';
  /** The request body (PUT). */
  body?: string;
  connections: number;
  warmupMs: number;
  measureMs: number;
  /**
   * Sends x-client-id (one per connection) and x-client-seq (1, 2, … per connection), the way a
   * retry-safe client writes: the server keeps one session per connection, not one per request.
   */
  sessions: boolean;
}

/** What one load run measured: 2xx answers only count; anything else is reported, not hidden. */
export interface LoadResult {
  opsPerSec: number;
  p50Us: number;
  p99Us: number;
  /** 2xx answers in the measured window. */
  ok: number;
  /** Answers other than 2xx over the whole run, by status code. */
  bad: Record<string, number>;
  /** Connection errors and timeouts over the whole run. */
  errors: number;
}

interface AutocannonClient {
  on(event: 'response', listener: () => void): void;
  setHeaders(headers: Record<string, string>): void;
}
interface AutocannonInstance {
  on(event: 'response', listener: (client: unknown, status: number, bytes: number, ms: number) => void): void;
  on(event: 'reqError', listener: (error: Error) => void): void;
  stop(): void;
}
type Autocannon = (
  opts: Record<string, unknown>,
  cb: (err: Error | null, result: unknown) => void,
) => AutocannonInstance;

const send = (m: unknown): void => {
  process.send?.(m);
};
process.on('disconnect', () => process.exit(0));

function ceilingMain(): void {
  const server = createServer({ keepAliveTimeout: 10_000 }, (req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(204);
      res.end();
    });
  });
  server.listen(0, '127.0.0.1', () => send({ port: (server.address() as AddressInfo).port }));
}

async function loadMain(cfg: LoadConfig): Promise<LoadResult> {
  const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;
  const lat = new Float64Array(1 << 22);
  let n = 0;
  let ok = 0;
  let errors = 0;
  const bad: Record<string, number> = {};
  let measuring = false;
  let nextClient = 0;
  const run = { t0: 0, t1: 0 };
  let done: (v: unknown) => void = () => undefined;
  const finished = new Promise((resolve) => {
    done = resolve;
  });
  const headers: Record<string, string> = cfg.method === 'PUT' ? { 'content-type': 'text/plain' } : {};
  const instance = autocannon(
    {
      url: cfg.url,
      method: cfg.method,
      body: cfg.body,
      connections: cfg.connections,
      pipelining: 1,
      duration: 3600,
      sampleInt: 50,
      timeout: 20,
      headers,
      setupClient: cfg.sessions
        ? (client: AutocannonClient) => {
            const id = `bench-${process.pid}-${nextClient++}`;
            let seq = 1;
            client.setHeaders({ ...headers, 'x-client-id': id, 'x-client-seq': String(seq) });
            // 'response' fires before the client builds its next request: the next one gets seq + 1.
            client.on('response', () =>
              client.setHeaders({ ...headers, 'x-client-id': id, 'x-client-seq': String(++seq) }),
            );
          }
        : undefined,
    },
    (err, result) => done(err ?? result),
  );
  instance.on('response', (_client, status, _bytes, ms) => {
    if (status < 200 || status > 299) {
      bad[status] = (bad[status] ?? 0) + 1;
      return;
    }
    if (!measuring) return;
    ok++;
    if (n < lat.length) lat[n++] = ms;
  });
  instance.on('reqError', () => {
    errors++;
  });
  await new Promise((r) => setTimeout(r, cfg.warmupMs));
  measuring = true;
  run.t0 = performance.now();
  await new Promise((r) => setTimeout(r, cfg.measureMs));
  measuring = false;
  run.t1 = performance.now();
  instance.stop();
  await finished;
  const sorted = lat.subarray(0, n).sort();
  const pct = (q: number): number =>
    sorted.length === 0 ? NaN : Math.round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! * 1000);
  return { opsPerSec: Math.round(ok / ((run.t1 - run.t0) / 1000)), p50Us: pct(0.5), p99Us: pct(0.99), ok, bad, errors };
}

if (process.argv[2] === 'ceiling') ceilingMain();
else if (process.argv[2] === 'load') {
  const result = await loadMain(JSON.parse(process.argv[3]!) as LoadConfig);
  send({ result });
  process.disconnect?.();
}
