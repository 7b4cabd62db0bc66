/**
 * The benchmark's state machine and closed-loop load, shared by every mode.
 *
 * A transition is `{ id, p }` with a 16-byte payload `p`. Ids are unique positive integers (0 is
 * the noop), so every replica can check it applied the same set: a count and a sum of ids.
 * The load lives inside the leader's state machine: N closed-loop clients each keep one proposal
 * in flight; when the leader reports `applied`, the client records the latency (submission to
 * `applied`) and submits its next proposal in the same call, so a busy replica never sleeps.
 */
import type { Snapshot, StateMachine, TransitionId, TransitionState } from '../../src/index.js';

export interface BenchTx {
  id: number;
  p: string;
}
export interface BenchSnap {
  applied: number;
  sum: number;
}

/** Slots of a closed loop's table of proposals in flight (see {@link ClosedLoop}). */
const SLOTS = 1 << 20;
const SLOT_MASK = SLOTS - 1;

/** 16 bytes of payload per transition. */
export const PAYLOAD = '0123456789abcdef';
export const NOOP: BenchTx = { id: 0, p: '' };

/** Submission to `applied` latencies and commit counts over a measuring window. */
export class ClosedLoop {
  /**
   * Proposals in flight: the submission time (ms, performance.now()) of id `i` at slot
   * `i & SLOT_MASK`, which `slotId` says it holds. Ids are consecutive, so a slot comes round
   * again only 2^20 ids later; a Map of the ids in flight cost the leader's process more than
   * its encoding of the entries (a profile of tcp c1024), and the load generator must not weigh
   * more than the skeleton's.
   */
  private readonly sentAt = new Float64Array(SLOTS);
  private readonly slotId = new Float64Array(SLOTS);
  private inflightCount = 0;
  private running = false;
  private measuring = false;
  private latencies = new Float64Array(1 << 16);
  private nLat = 0;
  measured = 0;
  total = 0;
  private measureStart = 0;
  private measureEnd = 0;

  constructor(
    private readonly machine: BenchMachine,
    private readonly wake: () => void,
    private readonly idBase: number,
  ) {}

  private nextId = 1;

  /** How many ids this loop has used: a later loop on the same machine starts above them. */
  get submitted(): number {
    return this.idBase + this.nextId - 1;
  }

  /** Starts `clients` closed-loop clients (call from outside a tick: it wakes the replica). */
  start(clients: number): void {
    this.running = true;
    for (let i = 0; i < clients; i++) this.submit();
    this.wake();
  }

  beginMeasure(): void {
    this.measuring = true;
    this.measured = 0;
    this.nLat = 0;
    this.measureStart = performance.now();
  }

  endMeasure(): void {
    this.measuring = false;
    this.measureEnd = performance.now();
  }

  /** No more submissions; resolves once every proposal in flight is applied (or rejects after `timeoutMs`). */
  async stop(timeoutMs = 20_000): Promise<void> {
    this.running = false;
    const end = Date.now() + timeoutMs;
    while (this.inflightCount > 0) {
      if (Date.now() > end)
        throw new Error(
          `bench: ${this.inflightCount} proposals still in flight ${timeoutMs} ms after the load stopped`,
        );
      await new Promise((r) => setTimeout(r, 2));
    }
  }

  get inFlight(): number {
    return this.inflightCount;
  }

  result(): { commitsPerSec: number; p50Us: number; p99Us: number } {
    const seconds = (this.measureEnd - this.measureStart) / 1000;
    const lat = this.latencies.subarray(0, this.nLat).slice().sort();
    const pct = (q: number): number =>
      lat.length === 0 ? NaN : lat[Math.min(lat.length - 1, Math.floor(q * lat.length))]! * 1000;
    return {
      commitsPerSec: Math.round(this.measured / seconds),
      p50Us: Math.round(pct(0.5)),
      p99Us: Math.round(pct(0.99)),
    };
  }

  private submit(): void {
    const id = this.idBase + this.nextId++;
    const slot = id & SLOT_MASK;
    if (this.slotId[slot] !== 0) throw new Error(`bench: proposal ${this.slotId[slot]} still in flight 2^20 ids later`);
    this.slotId[slot] = id;
    this.sentAt[slot] = performance.now();
    this.inflightCount++;
    this.machine.pending.push({ id, p: PAYLOAD });
  }

  /** Takes `id` off the proposals in flight: its submission time, or -1 if it was not in flight. */
  private settle(id: number): number {
    const slot = id & SLOT_MASK;
    if (this.slotId[slot] !== id) return -1;
    this.slotId[slot] = 0;
    this.inflightCount--;
    return this.sentAt[slot]!;
  }

  /** Called by the machine for every state the leader reports. */
  report(id: TransitionId, state: TransitionState): void {
    if (state.status === 'applied') {
      const t0 = this.settle(id as number);
      if (t0 < 0) return;
      this.total++;
      if (this.measuring) {
        this.measured++;
        if (this.nLat === this.latencies.length) {
          const grown = new Float64Array(this.latencies.length * 2);
          grown.set(this.latencies);
          this.latencies = grown;
        }
        this.latencies[this.nLat++] = performance.now() - t0;
      }
      if (this.running) this.submit();
    } else if (state.status === 'abandoned') {
      // Lost to a leader change: the client gives up on it and submits a new proposal.
      if (this.settle(id as number) >= 0 && this.running) this.submit();
    }
  }
}

/** How long a case warms up, and measures; both sides of a comparison get the same. */
export interface Timing {
  /**
   * A case with fewer than {@link JIT_WARMUP_CLIENTS} in flight first runs this long at that
   * concurrency: at one proposal in flight a process runs its hot paths a few hundred times a
   * second, too few for V8 to optimize them within a short warm-up, so the case would measure
   * the interpreter, not the steady state of a server that has run for a while.
   */
  jitWarmupMs: number;
  /** At the case's own concurrency, before measuring. */
  warmupMs: number;
  measureMs: number;
}

/** The concurrency of the JIT warm-up (see {@link Timing.jitWarmupMs}). */
export const JIT_WARMUP_CLIENTS = 64;

/** How long a case of `clients` in flight warms the JIT first: 0 from {@link JIT_WARMUP_CLIENTS} on. */
export const jitWarmupFor = (clients: number, timing: Timing): number =>
  clients < JIT_WARMUP_CLIENTS ? timing.jitWarmupMs : 0;

/**
 * Drives `clients` closed-loop clients on the leader's `machine` as `timing` says and returns the
 * measured loop (its `result()` holds the figures). The warm-up's proposals are applied before
 * the measured ones start, with ids of their own.
 */
export async function runClosedLoop(
  machine: BenchMachine,
  wake: () => void,
  clients: number,
  timing: Timing,
): Promise<ClosedLoop> {
  let idBase = 0;
  const jitWarmupMs = jitWarmupFor(clients, timing);
  if (jitWarmupMs > 0) {
    const warm = new ClosedLoop(machine, wake, 0);
    machine.load = warm;
    warm.start(JIT_WARMUP_CLIENTS);
    await sleep(jitWarmupMs);
    await warm.stop();
    idBase = warm.submitted;
  }
  const load = new ClosedLoop(machine, wake, idBase);
  machine.load = load;
  load.start(clients);
  await sleep(timing.warmupMs);
  load.beginMeasure();
  await sleep(timing.measureMs);
  load.endMeasure();
  await load.stop();
  machine.load = undefined;
  return load;
}

/** Counts and sums what it applies; the leader's instance carries the load. */
export class BenchMachine implements StateMachine<BenchTx, BenchSnap> {
  applied = 0;
  sum = 0;
  pending: BenchTx[] = [];
  load: ClosedLoop | undefined;
  /** Told of every state reported (the failover bench uses it). */
  onState: ((id: TransitionId, state: TransitionState) => void) | undefined;

  getPendingTransitions(): BenchTx[] {
    if (this.pending.length === 0) return [];
    const p = this.pending;
    this.pending = [];
    return p;
  }

  applyTransition(t: BenchTx): void {
    if (t.id !== 0) {
      this.applied++;
      this.sum += t.id;
    }
  }

  registerTransitionState(id: TransitionId, state: TransitionState): void {
    this.load?.report(id, state);
    this.onState?.(id, state);
  }

  createSnapshot(lastIncludedIndex: number, lastIncludedTerm: number): Snapshot<BenchSnap> {
    return { lastIncludedIndex, lastIncludedTerm, data: { applied: this.applied, sum: this.sum } };
  }

  setSnapshot(s: Snapshot<BenchSnap>): void {
    this.applied = s.data.applied;
    this.sum = s.data.sum;
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Waits for `p` at most `ms`; the timer does not outlive it (a pending timer would hold the bench's exit). */
export async function atMost(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    p,
    new Promise((r) => {
      timer = setTimeout(r, ms);
    }),
  ]);
  clearTimeout(timer);
}

/** Polls `probe` every `interval` ms until it returns a value; throws after `timeoutMs`. */
export async function waitFor<R>(
  what: string,
  probe: () => R | undefined | Promise<R | undefined>,
  timeoutMs = 10_000,
  interval = 5,
): Promise<R> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const r = await probe();
    if (r !== undefined) return r;
    if (Date.now() > end) throw new Error(`bench: timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(interval);
  }
}

/** Wall-clock ms with sub-ms precision, comparable across processes of this machine. */
export const wallNow = (): number => performance.timeOrigin + performance.now();
