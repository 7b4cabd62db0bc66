import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  Replica,
  type Cluster,
  type Message,
  type StateMachine,
  type TransitionId,
  type TransitionState,
} from '../../src/index.js';

type Cmd = { readonly id: string };
const yieldOnce = () => new Promise<void>((resolve) => setImmediate(resolve));
// Two trips through the event loop's check phase: deterministic order (a 0 ms timer is not, under load).
const macrotask = () => yieldOnce().then(yieldOnce);

/** A state machine whose every call awaits, recording when it enters and leaves user code. */
class SlowMachine implements StateMachine<Cmd> {
  readonly events: string[] = [];
  pending: Cmd[] = [];
  applied: string[] = [];
  private async enter<R>(what: string, fn: () => R): Promise<R> {
    this.events.push(`enter ${what}`);
    await yieldOnce();
    await yieldOnce();
    const r = fn();
    await yieldOnce();
    this.events.push(`exit ${what}`);
    return r;
  }
  applyTransition(t: Cmd): Promise<void> {
    return this.enter(`apply ${t.id}`, () => {
      this.applied.push(t.id);
    });
  }
  registerTransitionState(id: TransitionId, s: TransitionState): Promise<void> {
    return this.enter(`state ${id} ${s.status}`, () => undefined);
  }
  getPendingTransitions(): Promise<Cmd[]> {
    return this.enter('poll', () => {
      const p = this.pending;
      this.pending = [];
      return p;
    });
  }
}

const soloCluster = (): Cluster<Cmd> => ({
  sendMessage() {},
  receiveMessages: () => [],
  halt: () => false,
  registerLeader() {},
});

/** Checks that the events form properly nested, never interleaved, enter/exit pairs. */
function expectNoInterleaving(events: string[]): void {
  for (let i = 0; i < events.length; i += 2) {
    const enter = events[i]!;
    expect(enter.startsWith('enter '), `event ${i}: ${enter}`).toBe(true);
    expect(events[i + 1], `event ${i + 1} after ${enter}`).toBe(`exit ${enter.slice(6)}`);
  }
}

describe('runExclusive', () => {
  it('never interleaves with an awaited applyTransition (or any other state machine call)', async () => {
    let now = 0;
    const sm = new SlowMachine();
    const replica = new Replica<Cmd>({
      id: 1,
      peerIds: [],
      cluster: soloCluster(),
      stateMachine: sm,
      noopTransition: { id: 'noop' },
      heartbeatTimeout: 50,
      electionTimeoutRange: [150, 300],
      clock: () => now,
      random: () => 0.5,
    });
    await replica.tick();
    now = 1_000;
    await replica.tick(); // a single replica elects itself at once
    expect(replica.status.role).toBe('leader');

    let submitted = 0;
    let exclusiveRuns = 0;
    let clientsDone = false;
    let ticks = 0;
    // Clients wait for a tick now and then, so ticks and clients alternate by construction.
    const tickWaiters: (() => void)[] = [];
    const ticking = (async () => {
      while (!clientsDone) {
        now += 10;
        await replica.tick();
        ticks++;
        for (const wake of tickWaiters.splice(0)) wake();
      }
    })();
    // Clients, like HTTP handlers: each queues transitions and reads state under the lock, while ticks run.
    const clients = (async () => {
      const runs: Promise<void>[] = [];
      for (let i = 0; i < 30; i++) {
        runs.push(
          replica.runExclusive(async () => {
            const name = `client ${i}`;
            sm.events.push(`enter ${name}`);
            await yieldOnce();
            sm.pending.push({ id: `c${submitted++}` }, { id: `c${submitted++}` });
            await macrotask();
            exclusiveRuns++;
            sm.events.push(`exit ${name}`);
          }),
        );
        for (let k = 0; k < i % 4; k++) await macrotask();
        if (i % 4 === 3) await new Promise<void>((resolve) => tickWaiters.push(resolve));
      }
      await Promise.all(runs);
      clientsDone = true;
    })();
    await Promise.all([ticking, clients]);
    for (let i = 0; i < 3; i++) {
      now += 10;
      await replica.tick();
    }

    expect(exclusiveRuns).toBe(30);
    expect(ticks).toBeGreaterThan(5);
    expect(sm.applied).toEqual(['noop', ...Array.from({ length: submitted }, (_, i) => `c${i}`)]);
    expectNoInterleaving(sm.events);
    // The two kinds of work really did alternate: clients ran between applications, not only before or after.
    const kinds = sm.events
      .filter((e) => e.startsWith('enter '))
      .map((e) => (e.startsWith('enter client') ? 'client' : 'replica'));
    const switches = kinds.filter((k, i) => i > 0 && k !== kinds[i - 1]).length;
    console.log(`runExclusive: ${ticks} ticks, ${kinds.length} calls, ${switches} switches`);
    expect(switches).toBeGreaterThan(10);
  });
});

describe('start()', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  /** Races `p` against a real 5 s timeout so that a sleeping loop fails the test instead of hanging it. */
  const within5s = <X>(p: Promise<X>): Promise<X | 'timed out'> => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timed out'>((resolve) => {
      timer = setTimeout(() => resolve('timed out'), 5_000);
    });
    return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
  };

  it(
    'returns once halt() says so, having ticked once per halt() === false, without sleeping while messages arrive',
    { timeout: 10_000 },
    async () => {
      const N = 25;
      let now = 0;
      let haltCalls = 0;
      let receives = 0;
      const answers: Message<Cmd>[] = [];
      const setTimeoutSpy = vi.spyOn(globalThis, 'setTimeout');
      const cluster: Cluster<Cmd> = {
        // A leader's heartbeat arrives on every tick: the replica is always busy.
        receiveMessages: () => {
          receives++;
          now += 10;
          return [
            {
              type: 'append',
              from: 2,
              term: 1,
              prevLogIndex: 0,
              prevLogTerm: 0,
              entries: [],
              leaderCommit: 0,
              round: 0,
            },
          ];
        },
        sendMessage: (_to, m) => {
          answers.push(m);
        },
        halt: () => ++haltCalls > N,
        registerLeader() {},
      };
      const replica = new Replica<Cmd>({
        id: 1,
        peerIds: [2, 3],
        cluster,
        stateMachine: { registerTransitionState() {}, applyTransition() {}, getPendingTransitions: () => [] },
        noopTransition: { id: 'noop' },
        heartbeatTimeout: 50,
        electionTimeoutRange: [150, 300],
        tickInterval: 60_000,
        clock: () => now,
        random: () => 0.5,
      });
      const result = await within5s(replica.start());
      expect(result).toBeUndefined();
      expect(receives).toBe(N);
      expect(haltCalls).toBe(N + 1);
      expect(answers).toHaveLength(N);
      expect(answers.every((m) => m.type === 'appendResponse' && m.success)).toBe(true);
      expect(replica.status).toMatchObject({ role: 'follower', term: 1, leaderId: 2 });
      // It never slept tickInterval: it had work every time.
      expect(setTimeoutSpy.mock.calls.filter((c) => c[1] === 60_000)).toHaveLength(0);
    },
  );

  // Driven by events, not by real time: tickInterval is a minute, so every sleep the loop enters
  // is seen by the setTimeout spy and none ends by itself; the counts are exact at any load.
  it.each(['registerWakeup', 'setWakeup (the deprecated name)'])(
    'an idle replica sleeps tickInterval, and wake() (or the transport via %s) ends the sleep at once',
    { timeout: 10_000 },
    async (hook) => {
      let receives = 0;
      let halted = false;
      let wakeup: (() => void) | undefined;
      const setTimeoutSpy = vi.spyOn(globalThis, 'setTimeout');
      const sleeps = (): number => setTimeoutSpy.mock.calls.filter((c) => c[1] === 60_000).length;
      /** Yields to the event loop until `condition` holds (within5s turns a hang into a failure). */
      const until = async (condition: () => boolean): Promise<void> => {
        while (!condition()) await yieldOnce();
      };
      const cluster: Cluster<Cmd> = {
        receiveMessages: () => {
          receives++;
          return [];
        },
        sendMessage() {},
        halt: () => halted,
        registerLeader() {},
        ...(hook === 'registerWakeup'
          ? {
              registerWakeup: (w) => {
                wakeup = w;
              },
            }
          : {
              setWakeup: (w) => {
                wakeup = w;
              },
            }),
      };
      const replica = new Replica<Cmd>({
        id: 1,
        peerIds: [2, 3],
        cluster,
        stateMachine: { registerTransitionState() {}, applyTransition() {}, getPendingTransitions: () => [] },
        noopTransition: { id: 'noop' },
        heartbeatTimeout: 50,
        electionTimeoutRange: [150, 300],
        tickInterval: 60_000,
        clock: () => 0,
        random: () => 0.5,
      });
      expect(wakeup).toBeTypeOf('function');
      const running = replica.start();
      // The first tick (loading state) found nothing to do: one tick, then a long sleep.
      expect(await within5s(until(() => sleeps() === 1))).toBeUndefined();
      expect(receives).toBe(1);
      // The transport's wakeup ends the sleep: exactly one more tick, then asleep again.
      wakeup!();
      expect(await within5s(until(() => sleeps() === 2))).toBeUndefined();
      expect(receives).toBe(2);
      halted = true;
      replica.wake();
      expect(await within5s(running)).toBeUndefined();
      expect(receives).toBe(2);
      expect(sleeps()).toBe(2);
    },
  );
});
