// A small client of the key-value HTTP API: it finds the leader (following 307 redirects,
// trying other members on 503 or a dead connection) and retries a command with the same
// client id and sequence number until it is answered, so a retried write applies once.
import { Agent, request } from 'node:http';

/** A raw HTTP answer. */
export interface HttpAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One HTTP request; rejects on a network error or after `timeout` ms. */
export function httpRequest(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: string; agent?: Agent; timeout?: number } = {},
): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const body = options.body ?? '';
    const req = request(
      url,
      {
        method: options.method ?? 'GET',
        agent: options.agent,
        headers: {
          ...options.headers,
          ...(body || options.method === 'PUT' ? { 'Content-Length': String(Buffer.byteLength(body)) } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.setTimeout(options.timeout ?? 10_000, () =>
      req.destroy(new Error(`timeout after ${options.timeout ?? 10_000} ms: ${url}`)),
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** Where the members' HTTP APIs are, and how long one command may take in all. */
export interface KvClientOptions {
  /** HTTP origins (`http://host:port`) of the members. */
  origins: string[];
  /** This client's id; every command gets the next sequence number. */
  clientId: string;
  /** Ms a command may take, retries included, before it rejects. Default 20000. */
  deadline?: number;
  /** Shared keep-alive agent. */
  agent?: Agent;
  /**
   * For a server run with --groups: the group of a key (`groupOf` of shards.ts), so that the
   * client remembers the leader of each group rather than one leader for all keys.
   */
  shard?: (key: string) => number;
}

/** A client session: commands are sequential (one in flight), numbered 1, 2, 3, … */
export class KvClient {
  private seq = 0;
  /** The leader of each group, as last found (group 0 without `shard`). */
  private readonly leaders = new Map<number, string>();
  private next = 0;
  /** How many times a command was sent again (redirects not counted). */
  retries = 0;

  constructor(private readonly options: KvClientOptions) {}

  async put(key: string, value: string): Promise<void> {
    await this.command('PUT', key, value);
  }

  /** The value, or undefined if the key is absent. */
  async get(key: string): Promise<string | undefined> {
    const a = await this.command('GET', key);
    return a.status === 200 ? a.body : undefined;
  }

  /** Whether the key existed. */
  async delete(key: string): Promise<boolean> {
    return (await this.command('DELETE', key)).status === 204;
  }

  /** Sends one command under the next sequence number until a member answers it. */
  async command(method: 'GET' | 'PUT' | 'DELETE', key: string, body?: string, seq = ++this.seq): Promise<HttpAnswer> {
    const end = Date.now() + (this.options.deadline ?? 20_000);
    const headers = { 'x-client-id': this.options.clientId, 'x-client-seq': String(seq) };
    let last = 'no attempt';
    const group = this.options.shard?.(key) ?? 0;
    for (let attempt = 0; Date.now() < end; attempt++) {
      const origin = this.leaders.get(group) ?? this.options.origins[this.next++ % this.options.origins.length]!;
      let a: HttpAnswer;
      try {
        a = await httpRequest(`${origin}/kv/${encodeURIComponent(key)}`, {
          method,
          headers,
          body,
          agent: this.options.agent,
          timeout: 8000,
        });
      } catch (error) {
        last = `${origin}: ${(error as Error).message}`;
        this.leaders.delete(group);
        this.retries++;
        await sleep(20);
        continue;
      }
      if (a.status === 307 && typeof a.headers.location === 'string') {
        this.leaders.set(group, new URL(a.headers.location).origin);
        continue;
      }
      if (a.status === 503 || a.status === 504) {
        last = `${origin}: ${a.status} ${a.body.trim()}`;
        this.leaders.delete(group);
        this.retries++;
        await sleep(a.status === 503 ? 50 : 0);
        continue;
      }
      if ((a.status >= 200 && a.status < 300) || a.status === 404) {
        this.leaders.set(group, origin);
        return a;
      }
      throw new Error(`${method} ${key}: HTTP ${a.status} from ${origin}: ${a.body.trim()}`);
    }
    throw new Error(`${method} ${key}: no answer within ${this.options.deadline ?? 20_000} ms (last: ${last})`);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
