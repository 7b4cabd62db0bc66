// The HTTP API of the key-value server, on node:http. It knows nothing of Raft beyond what
// {@link KvBackend} tells it: whether this replica leads, where the leader's HTTP API is, how
// to submit a command and wait for its result, how to read linearizably, and how to change
// the membership.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { UsageError, addressList } from './flags.js';
import {
  KvConflict,
  KvInvalid,
  KvNotFound,
  KvNotLeader,
  KvStopping,
  KvTimeout,
  type KvCommand,
  type KvResult,
  type MemberAddresses,
} from './state-machine.js';

/** What the HTTP layer needs from the replica. */
export interface KvBackend {
  /** This replica's id, used to make generated client ids unique. */
  readonly id: number;
  /**
   * Whether this replica leads now; with `key` (a /kv request), whether it leads the key's
   * group (with --groups: this process may lead some groups and not others).
   */
  isLeader(key?: string): boolean;
  /**
   * The HTTP origin (`http://host:port`) to send the request to, when a leader other than this
   * one is known: `leaderId` if given (from a {@link KvNotLeader}), else the one the replica knows
   * now (of `key`'s group, for a /kv request).
   */
  leaderOrigin(leaderId?: number, key?: string): string | undefined;
  /** Proposes the command and resolves with what applying it returned here (it may be a refusal). */
  submit(command: KvCommand): Promise<KvResult>;
  /** A linearizable read without a log write (read index); rejects with {@link KvNotLeader} off the leader. */
  read(key: string): Promise<string | undefined>;
  /**
   * Commits the member's addresses through the log, then adds it; resolves once the configuration
   * including it is committed. Rejects with {@link KvNotLeader} or {@link KvConflict}.
   */
  addMember(id: number, addresses: MemberAddresses): Promise<void>;
  /**
   * Removes a member; resolves once the change is committed. Rejects like {@link addMember}, and
   * with {@link KvNotFound} if `id` is not a member.
   */
  removeMember(id: number): Promise<void>;
  /** Hands leadership to `id`; resolves once it leads. */
  transferLeadership(id: number): Promise<void>;
  /** The JSON of `GET /status`. */
  status(): unknown;
  /** The body of `GET /metrics` (the Prometheus text format) and its content type. */
  metrics?(): Promise<{ contentType: string; body: string }>;
  /** The JSON of `GET /debug/dump`: local state, read without the log. */
  dump(): Promise<unknown>;
  /** Ms before an unapplied command is answered 504. */
  readonly timeout: number;
  /** Whether the server is shutting down: every new request is then answered 503. */
  isStopping?(): boolean;
}

/** The largest body accepted (a PUT's value, a POST /members): 1 MiB; `--help` says so. */
export const MAX_BODY = 1024 * 1024;
/** How much of an oversized body is read (and dropped) so the client sees the 413; past it the connection closes. */
const MAX_DRAIN = 16 * MAX_BODY;

class HttpError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** The request listener for `http.createServer`. */
export function kvRequestListener(backend: KvBackend): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    handle(backend, req, res).catch((error: unknown) => {
      const e =
        error instanceof HttpError
          ? error
          : new HttpError(500, `internal error: ${(error as Error)?.message ?? String(error)}`);
      send(res, e.code, `${e.message}\n`, e.headers);
    });
  };
}

/** A request target that `new URL` would return unchanged as the pathname: `/kv/` and plain path characters. */
const PLAIN_KV_TARGET = /^\/kv\/[\w\-.~!$&'()*+,;=:@%/]+$/;
/** A segment starting with a dot, which `new URL` may resolve (`.`, `..`, `%2e`, `.%2E`, ...). */
const DOT_SEGMENT = /\/(?:\.|%2e)/i;

/**
 * The pathname of a request target, as `new URL(target, 'http://localhost').pathname` gives it.
 * The common `/kv/<key>` target is returned as is when parsing could not change it (no query,
 * fragment, dot segment, backslash or character the parser would encode): the parser costs more
 * than the rest of a write's HTTP handling.
 */
export function requestPath(target: string): string {
  if (PLAIN_KV_TARGET.test(target) && !DOT_SEGMENT.test(target)) return target;
  return new URL(target, 'http://localhost').pathname;
}

async function handle(backend: KvBackend, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = { pathname: requestPath(req.url ?? '/') };
  const method = req.method ?? 'GET';
  if (backend.isStopping?.()) throw new KvStoppingHttp();
  if (url.pathname === '/status') {
    if (method !== 'GET') throw new HttpError(405, 'use GET', { Allow: 'GET' });
    return sendJson(res, 200, backend.status());
  }
  if (url.pathname === '/metrics' && backend.metrics) {
    if (method !== 'GET') throw new HttpError(405, 'use GET', { Allow: 'GET' });
    const { contentType, body } = await backend.metrics();
    return send(res, 200, body, { 'Content-Type': contentType });
  }
  if (url.pathname === '/debug/dump') {
    if (method !== 'GET') throw new HttpError(405, 'use GET', { Allow: 'GET' });
    return sendJson(res, 200, await backend.dump());
  }
  if (url.pathname === '/members' || url.pathname.startsWith('/members/') || url.pathname.startsWith('/transfer/'))
    return membership(backend, url.pathname, method, req, res);
  const m = /^\/kv\/(.+)$/.exec(url.pathname);
  const paths = '/kv/<key>, /members, /transfer/<id>, /status, /metrics or /debug/dump';
  if (!m) throw new HttpError(404, `not found: use ${paths}`);
  let key: string;
  try {
    key = decodeURIComponent(m[1]!);
  } catch {
    throw new HttpError(400, 'bad percent-encoding in key');
  }
  if (method !== 'GET' && method !== 'PUT' && method !== 'DELETE')
    throw new HttpError(405, 'use GET, PUT or DELETE', { Allow: 'GET, PUT, DELETE' });
  if (method === 'GET') {
    // A linearizable read without a log write: the leader confirms it still leads, waits until
    // it has applied everything committed before the request, then reads its own map.
    if (!backend.isLeader(key)) throw notLeader(backend, { definite: true, key });
    const value = await leaderOnly(backend, backend.read(key), key);
    return value === undefined ? send(res, 404, 'no such key\n') : send(res, 200, value);
  }
  const body = method === 'PUT' ? await readBody(req) : '';
  const { client, seq } = session(backend.id, req);
  if (!backend.isLeader(key)) throw notLeader(backend, { definite: true, key });
  const id = `${client}:${seq}`;
  const command: KvCommand =
    method === 'PUT' ? { id, client, seq, key, op: 'put', value: body } : { id, client, seq, key, op: 'delete' };
  const result = await leaderOnly(backend, backend.submit(command), key);
  // A (client, seq) pair reused with another command, or an old seq: nothing was applied.
  if (!result.ok) return send(res, 409, `refused: ${result.refused}\n`);
  if (method === 'DELETE' && result.previous === undefined) return send(res, 404, 'no such key (nothing deleted)\n');
  return sendEmpty(res);
}

/** 503 with Retry-After: the server is shutting down; the connection closes after the answer. */
class KvStoppingHttp extends HttpError {
  constructor(why = 'the server is shutting down') {
    super(503, `${why}; retry on another replica`, { 'Retry-After': '1', Connection: 'close' });
  }
}

/**
 * Waits for a leader-only operation, mapping its failures to 307/503 (not the leader), 404 (no
 * such member), 409 (busy), 422 (can never succeed as sent), 503 (shutting down) and 504 (timeout).
 * `key`: the key of a /kv request, whose definite refusals say so in a header. No async function
 * of its own: the deadline's race maps the failure, so a request waits on one promise, not on two.
 */
function leaderOnly<R>(backend: KvBackend, p: Promise<R>, key?: string): Promise<R> {
  return deadlinesOf(backend.timeout).race(p, (error) => refusal(backend, error, key));
}

/** The HTTP answer to a refusal of the backend (see {@link leaderOnly}); anything else as it is. */
function refusal(backend: KvBackend, error: unknown, key: string | undefined): unknown {
  if (error instanceof KvNotLeader) {
    const definite = key !== undefined && error.definite;
    return notLeader(backend, { why: error.message, leaderId: error.leaderId, definite, key });
  }
  if (error instanceof KvConflict) return new HttpError(409, `${error.message}; retry later`, { 'Retry-After': '1' });
  if (error instanceof KvTimeout) return new HttpError(504, `${error.message}; retry`);
  if (error instanceof KvInvalid) return new HttpError(422, error.message);
  if (error instanceof KvNotFound) return new HttpError(404, error.message);
  if (error instanceof KvStopping) return new KvStoppingHttp(error.message);
  return error;
}

/** POST /members, DELETE /members/<id>, POST /transfer/<id>: leader only; 200 once done. */
async function membership(
  backend: KvBackend,
  path: string,
  method: string,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const target = /^\/(members|transfer)\/(\d+)$/.exec(path);
  if (path === '/members') {
    if (method !== 'POST') throw new HttpError(405, 'use POST', { Allow: 'POST' });
    const body = await readBody(req);
    let parsed: { id?: unknown; raft?: unknown; http?: unknown };
    try {
      parsed = JSON.parse(body) as typeof parsed;
    } catch {
      throw new HttpError(400, 'the body must be JSON: {"id":4,"raft":"host:port","http":"host:port"}');
    }
    const { id, raft, http } = parsed ?? {};
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 1)
      throw new HttpError(400, '"id" must be a positive integer');
    if (typeof raft !== 'string' || typeof http !== 'string')
      throw new HttpError(400, '"raft" and "http" must be "host:port" strings');
    let addresses: MemberAddresses;
    try {
      addresses = {
        raft: addressList('raft', `${id}=${raft}`).get(id)!,
        http: addressList('http', `${id}=${http}`).get(id)!,
      };
    } catch (error) {
      if (error instanceof UsageError) throw new HttpError(400, error.message);
      throw error;
    }
    if (!backend.isLeader()) throw notLeader(backend);
    await leaderOnly(backend, backend.addMember(id, addresses));
    return sendJson(res, 200, { added: id });
  }
  if (target === null)
    throw new HttpError(404, 'not found: use POST /members, DELETE /members/<id> or POST /transfer/<id>');
  const id = Number(target[2]);
  if (target[1] === 'members') {
    if (method !== 'DELETE') throw new HttpError(405, 'use DELETE', { Allow: 'DELETE' });
    if (!backend.isLeader()) throw notLeader(backend);
    await leaderOnly(backend, backend.removeMember(id));
    return sendJson(res, 200, { removed: id });
  }
  if (method !== 'POST') throw new HttpError(405, 'use POST', { Allow: 'POST' });
  if (!backend.isLeader()) throw notLeader(backend);
  await leaderOnly(backend, backend.transferLeadership(id));
  return sendJson(res, 200, { leader: id });
}

/** The client's id and sequence number from the headers, or a fresh unique pair. */
function session(id: number, req: IncomingMessage): { client: string; seq: number } {
  const client = header(req, 'x-client-id');
  const seqText = header(req, 'x-client-seq');
  if (client === undefined && seqText === undefined) return { client: `anon-${id}-${randomUUID()}`, seq: 1 };
  if (client === undefined || seqText === undefined)
    throw new HttpError(400, 'send both x-client-id and x-client-seq, or neither');
  const seq = Number(seqText);
  if (!/^\d+$/.test(seqText) || !Number.isSafeInteger(seq) || seq < 1)
    throw new HttpError(400, 'x-client-seq must be a positive integer');
  if (client.length === 0 || client.length > 200) throw new HttpError(400, 'x-client-id must be 1 to 200 characters');
  return { client, seq };
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * 307 to the leader when one is known, else 503 with Retry-After. `definite`: this request
 * certainly changed nothing (refused before the log, or abandoned by Raft), said to the client
 * by the header `X-Kv-Outcome: not-applied`; without it the outcome of a write is unknown (an
 * earlier attempt with the same x-client-id and x-client-seq may be applied in any case).
 */
function notLeader(
  backend: KvBackend,
  o: { why?: string; leaderId?: number | undefined; definite?: boolean; key?: string | undefined } = {},
): HttpError {
  const why = o.why ?? 'this replica does not lead';
  const origin = backend.leaderOrigin(o.leaderId, o.key);
  const definite: Record<string, string> = o.definite ? { 'X-Kv-Outcome': 'not-applied' } : {};
  return origin === undefined
    ? new HttpError(503, `${why}; no leader known, retry later`, { 'Retry-After': '1', ...definite })
    : new HttpError(307, `${why}; the leader is ${origin}`, { Location: origin, ...definite });
}

/** The {@link Deadlines} of requests that wait `ms`. */
function deadlinesOf(ms: number): Deadlines {
  let d = deadlines.get(ms);
  if (d === undefined) deadlines.set(ms, (d = new Deadlines(ms)));
  return d;
}

/** A request waiting on the backend, in the order of its deadline. */
interface Waiter {
  readonly at: number;
  readonly expire: () => void;
  done: boolean;
}

/**
 * The 504 deadlines of the requests waiting `ms` on the backend: one timer for all of them, armed
 * for the oldest, instead of a Timeout object (and its async hooks) per request. They all wait
 * the same time, so they join in deadline order; a settled one is marked done, and the queue's
 * head skips done ones at once, since most settle in the order they came. The timer is cleared
 * whenever nothing waits, so it never keeps the process alive by itself longer than a request would.
 */
class Deadlines {
  private readonly waiting: Waiter[] = [];
  private head = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly ms: number) {}

  /**
   * Settles like `p`, its rejection mapped by `failed`, or rejects with a 504 once `ms` have
   * passed, whichever comes first.
   */
  race<R>(p: Promise<R>, failed: (error: unknown) => unknown): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      const ms = this.ms;
      const w: Waiter = {
        at: performance.now() + ms,
        expire: () =>
          reject(new HttpError(504, `not applied within ${ms} ms; retry with the same x-client-id and x-client-seq`)),
        done: false,
      };
      this.waiting.push(w);
      this.timer ??= setTimeout(this.fire, ms);
      p.then(
        (v) => {
          this.finish(w);
          resolve(v);
        },
        (e: unknown) => {
          this.finish(w);
          reject(failed(e));
        },
      );
    });
  }

  private finish(w: Waiter): void {
    w.done = true;
    this.trim();
  }

  /** Drops the done waiters at the head; clears the timer once none is left. */
  private trim(): void {
    const q = this.waiting;
    while (this.head < q.length && q[this.head]!.done) this.head++;
    if (this.head === q.length) {
      q.length = 0;
      this.head = 0;
      if (this.timer !== undefined) clearTimeout(this.timer);
      this.timer = undefined;
    } else if (this.head >= 1024 && this.head * 2 >= q.length) {
      q.splice(0, this.head);
      this.head = 0;
    }
  }

  /** Expires every waiter whose deadline has passed, then re-arms for the oldest left. */
  private readonly fire = (): void => {
    this.timer = undefined;
    const q = this.waiting;
    const now = performance.now();
    while (this.head < q.length && q[this.head]!.at <= now) {
      const w = q[this.head++]!;
      if (!w.done) {
        w.done = true;
        w.expire();
      }
    }
    this.trim();
    if (this.head < q.length) this.timer = setTimeout(this.fire, Math.max(1, q[this.head]!.at - now));
  };
}

/** One {@link Deadlines} per waiting time (one per server, in practice). */
const deadlines = new Map<number, Deadlines>();

/**
 * The body, at most MAX_BODY bytes. A larger one is answered 413 once it has been read (and
 * thrown away), so the client, still sending, sees the answer; past MAX_DRAIN the 413 goes out
 * at once and the connection closes after it.
 */
function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const tooLarge = (): HttpError => new HttpError(413, `body larger than ${MAX_BODY} bytes`, { Connection: 'close' });
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= MAX_BODY) chunks.push(c);
      else if (size > MAX_DRAIN) {
        req.removeAllListeners('data');
        req.pause();
        reject(tooLarge());
      }
    });
    req.on('end', () => {
      if (size > MAX_BODY) reject(tooLarge());
      else resolve(chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8'));
    });
    req.on('error', reject);
  });
}

function send(res: ServerResponse, code: number, body: string, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  // An answer sent before the request was read (413 past MAX_DRAIN) closes the connection after it.
  if (!res.req.complete) res.once('finish', () => res.req.socket.destroy());
  const h = { ...headers };
  if (code === 307 && h.Location !== undefined && res.req.url) h.Location += res.req.url;
  res.writeHead(code, {
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': String(Buffer.byteLength(body)),
    ...h,
  });
  res.end(body);
}

/** The headers of an empty 204, as {@link send} writes them: one object for every write answered. */
const EMPTY_204 = Object.freeze({ 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': '0' });

/** `send(res, 204, '')` for a request read in full: the answer to every successful write. */
function sendEmpty(res: ServerResponse): void {
  if (res.headersSent || !res.req.complete) return send(res, 204, '');
  res.writeHead(204, EMPTY_204);
  res.end();
}

function sendJson(res: ServerResponse, code: number, value: unknown): void {
  const body = `${JSON.stringify(value, null, 2)}\n`;
  res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(body)) });
  res.end(body);
}
