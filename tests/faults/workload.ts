// Clients like real ones: each is sequential (one request in flight), finds the leader by
// following 307s, retries a write with the same x-client-id and x-client-seq (so it applies
// once), and records every operation's invocation and completion for the checker.
//
// Which answers are definite (what an operation's outcome is recorded as):
// - 200/404 to a GET, 204/404 to a PUT or DELETE: completed (`ok`); a DELETE's 204 says the key
//   existed, its 404 that it did not.
// - A 307 or 503 carrying `X-Kv-Outcome: not-applied`, or a refused connection: that attempt
//   changed nothing. A write is `fail` only if every attempt was like this.
// - Anything else (a timeout, a 504, a reset connection, a 307/503 without the header): that
//   attempt may or may not apply. A write that ends without a completion is `unknown`: the
//   checker lets it take effect at any time after its invocation, or never.
// - A GET has no effect, so one that never completes is `fail` (and the checker drops it).
import { Agent } from 'node:http';
import { httpRequest, sleep, type HttpAnswer } from '../../docs/examples/kv/client.js';
import type { HistoryOp, KvOp } from '../helpers/linearizability.js';
import type { Rng } from './proxy.js';

/** One recorded operation: a {@link HistoryOp} with what the report counts. */
export interface Recorded extends HistoryOp {
  outcome: 'ok' | 'fail' | 'unknown';
  /** Invoked while a fault was in force. */
  duringFault: boolean;
}

/** What clients need from the run. */
export interface WorkloadOptions {
  origins: () => string[];
  keys: string[];
  clients: number;
  /**
   * Ms one attempt may wait for its answer, for the patient clients (odd numbers, readers):
   * longer than a pause, so a woken leader's answers are seen. The others give up after
   * {@link quickTimeout} and move on to another member, so someone writes through the new
   * leader meanwhile while a reader stays with the old one: a stale read needs both.
   */
  attemptTimeout: number;
  quickTimeout: number;
  /** Ms an operation may take, retries included, before it is given up. */
  opDeadline: number;
  /** Ms since the run started: the history's clock. */
  now: () => number;
  /** Whether a fault is in force now (for the availability figure). */
  faulty: () => boolean;
  rng: (client: number) => Rng;
  /** Bytes of padding added to each put's value (to fill disks faster). */
  padding?: number;
}

/** The clients of one run: {@link start}, then {@link stop} resolves once every client is idle. */
export class Workload {
  readonly history: Recorded[] = [];
  private stopped = false;
  private running: Promise<void>[] = [];
  private readonly agents: Agent[] = [];

  constructor(private readonly o: WorkloadOptions) {}

  start(): void {
    for (let c = 1; c <= this.o.clients; c++) {
      const agent = new Agent({ keepAlive: true, maxSockets: 2 });
      this.agents.push(agent);
      this.running.push(this.client(c, agent, this.o.rng(c)));
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.running);
    this.running = [];
    for (const a of this.agents) a.destroy();
  }

  private async client(c: number, agent: Agent, rng: Rng): Promise<void> {
    const clientId = `faults-${c}-${Math.floor(rng() * 1e9).toString(36)}`;
    let seq = 0;
    let n = 0;
    const state = { leader: undefined as string | undefined };
    // Patient clients only read (a write caught on a cut-off leader would take them away from
    // it) and stay with the leader they know; quick ones mostly write.
    const patient = c % 2 === 1;
    const reads = patient ? 1 : 0.3;
    const timeout = patient ? this.o.attemptTimeout : this.o.quickTimeout;
    while (!this.stopped) {
      const key = this.o.keys[Math.floor(rng() * this.o.keys.length)]!;
      const r = rng();
      n++;
      const op: KvOp =
        r < reads
          ? { kind: 'get', key }
          : r < reads + (1 - reads) * 0.7
            ? { kind: 'put', key, value: `${c}.${n}` }
            : { kind: 'delete', key };
      const write = op.kind !== 'get' ? { clientId, seq: ++seq } : undefined;
      const rec = await this.perform(c, op, write, agent, state, rng, timeout);
      this.history.push(rec);
      // A little think time, so readers do not flood the machine (and the history).
      await sleep(Math.floor(rng() * (patient ? 20 : 5)));
    }
  }

  /** Runs one operation to a definite answer or its deadline. */
  private async perform(
    c: number,
    op: KvOp,
    write: { clientId: string; seq: number } | undefined,
    agent: Agent,
    state: { leader: string | undefined },
    rng: Rng,
    attemptTimeout: number,
  ): Promise<Recorded> {
    const call = this.o.now();
    const rec: Recorded = { client: c, op, call, outcome: 'fail', duringFault: this.o.faulty() };
    const end = call + this.o.opDeadline;
    let maybeApplied = false;
    const method = op.kind === 'get' ? 'GET' : op.kind === 'put' ? 'PUT' : 'DELETE';
    const body = op.kind === 'put' ? op.value + (this.o.padding ? '.'.repeat(this.o.padding) : '') : undefined;
    const headers: Record<string, string> = write
      ? { 'x-client-id': write.clientId, 'x-client-seq': String(write.seq) }
      : {};
    while (this.o.now() < end) {
      const origins = this.o.origins();
      const origin = state.leader ?? origins[Math.floor(rng() * origins.length)]!;
      let a: HttpAnswer;
      try {
        a = await httpRequest(`${origin}/kv/${encodeURIComponent(op.key)}`, {
          method,
          headers,
          body,
          agent,
          timeout: Math.max(200, Math.min(attemptTimeout, end - this.o.now())),
        });
      } catch (error) {
        // A refused connection never reached the server; anything else may have.
        if ((error as NodeJS.ErrnoException).code !== 'ECONNREFUSED') maybeApplied = true;
        state.leader = undefined;
        await sleep(20);
        continue;
      }
      const definite = a.headers['x-kv-outcome'] === 'not-applied';
      if (a.status === 200 || a.status === 204 || a.status === 404) {
        rec.ret = this.o.now();
        rec.outcome = 'ok';
        if (op.kind === 'get') rec.output = a.status === 200 ? stripPadding(a.body) : undefined;
        if (op.kind === 'delete') rec.existed = a.status === 204;
        state.leader = origin;
        return rec;
      }
      if (!definite) maybeApplied = true;
      if (a.status === 307 && typeof a.headers.location === 'string') {
        state.leader = new URL(a.headers.location).origin;
        continue;
      }
      state.leader = undefined;
      await sleep(a.status === 503 ? 50 : 10);
    }
    // Given up: a write that may have reached the log is unknown, anything else failed.
    if (op.kind !== 'get' && maybeApplied) rec.outcome = 'unknown';
    return rec;
  }
}

/** The value without the padding the disk-full run adds. */
export function stripPadding(v: string): string {
  const i = v.indexOf('.', v.indexOf('.') + 1);
  return i < 0 ? v : v.slice(0, i);
}
