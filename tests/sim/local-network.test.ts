import { describe, it, expect } from 'vitest';
import type { Message } from '../../src/core/message.js';
import { LocalNetwork } from '../../src/sim/local-network.js';

type Cmd = { readonly id: number };
type Msg = Message<Cmd>;

/** A vote request whose `lastLogIndex` carries a sequence number, so tests can tell messages apart. */
const msg = (from: number, n: number): Msg => ({
  type: 'vote',
  from,
  term: 1,
  lastLogIndex: n,
  lastLogTerm: 0,
  pre: false,
  force: false,
});
const numbers = (ms: Msg[]): number[] => ms.map((m) => (m.type === 'vote' ? m.lastLogIndex : -1));

/** Sends `count` numbered messages from 1 to 2, then delivers everything. */
function run(seed: number, count: number, opts: ConstructorParameters<typeof LocalNetwork>[0] = {}) {
  const net = new LocalNetwork<Cmd>({ seed, ...opts });
  const a = net.cluster(1);
  const b = net.cluster(2);
  for (let i = 0; i < count; i++) a.sendMessage(2, msg(1, i));
  net.advance(net.stats.sent > 0 ? 1000 : 0);
  return { net, received: numbers(b.receiveMessages() as Msg[]) };
}

const receive = (c: { receiveMessages(): Msg[] | Promise<Msg[]> }): Msg[] => c.receiveMessages() as Msg[];

describe('LocalNetwork delivery', () => {
  it('delivers a message only once its delay has passed', () => {
    const net = new LocalNetwork<Cmd>({ minDelay: 10, maxDelay: 10 });
    const a = net.cluster(1);
    const b = net.cluster(2);
    a.sendMessage(2, msg(1, 0));
    expect(net.nextDeliveryTime()).toBe(10);
    net.advance(9);
    expect(receive(b)).toEqual([]);
    net.advanceTo(net.nextDeliveryTime()!);
    expect(receive(b)).toEqual([msg(1, 0)]);
    expect(receive(b)).toEqual([]); // each message once
    expect(net.nextDeliveryTime()).toBeUndefined();
    expect(net.stats).toEqual({ sent: 1, delivered: 1, dropped: 0, duplicated: 0 });
  });

  it('draws delays in [minDelay, maxDelay] and delivers in delivery-time order', () => {
    const net = new LocalNetwork<Cmd>({ seed: 3, minDelay: 2, maxDelay: 8 });
    const a = net.cluster(1);
    const b = net.cluster(2);
    for (let i = 0; i < 200; i++) a.sendMessage(2, msg(1, i));
    expect(net.nextDeliveryTime()!).toBeGreaterThanOrEqual(2);
    net.advance(2 - 1e-9);
    expect(receive(b)).toEqual([]);
    const got: number[] = [];
    let times = 0;
    while (net.nextDeliveryTime() !== undefined) {
      const t = net.nextDeliveryTime()!;
      expect(t).toBeLessThanOrEqual(8);
      net.advanceTo(t);
      got.push(...numbers(receive(b)));
      times++;
    }
    expect(got.slice().sort((x, y) => x - y)).toEqual([...Array(200).keys()]);
    expect(times).toBeGreaterThan(100); // delays are spread, not bunched
  });

  it('replays the same delivery order for the same seed, and another for another seed', () => {
    const first = run(11, 500, { loss: 0.1, duplication: 0.1 }).received;
    expect(run(11, 500, { loss: 0.1, duplication: 0.1 }).received).toEqual(first);
    expect(run(12, 500, { loss: 0.1, duplication: 0.1 }).received).not.toEqual(first);
  });

  it('reorders messages', () => {
    const { received } = run(5, 100);
    expect(received).toHaveLength(100);
    expect(received).not.toEqual([...Array(100).keys()]);
  });

  it('breaks delivery-time ties by send order', () => {
    const net = new LocalNetwork<Cmd>({ minDelay: 3, maxDelay: 3 });
    const a = net.cluster(1);
    const c = net.cluster(3);
    const b = net.cluster(2);
    for (let i = 0; i < 10; i++) (i % 2 ? a : c).sendMessage(2, msg(i % 2 ? 1 : 3, i));
    net.advance(3);
    expect(numbers(receive(b))).toEqual([...Array(10).keys()]);
  });

  it('loses about `loss` of the messages', () => {
    const { net, received } = run(8, 10_000, { loss: 0.3 });
    expect(received.length).toBeGreaterThan(6700);
    expect(received.length).toBeLessThan(7300);
    expect(net.stats.dropped + net.stats.delivered).toBe(10_000);
  });

  it('duplicates about `duplication` of the messages, each copy separate', () => {
    const { net, received } = run(9, 10_000, { duplication: 0.2 });
    expect(received.length).toBe(10_000 + net.stats.duplicated);
    expect(net.stats.duplicated).toBeGreaterThan(1700);
    expect(net.stats.duplicated).toBeLessThan(2300);
    expect(new Set(received).size).toBe(10_000);

    const one = new LocalNetwork<Cmd>({ duplication: 1 });
    const to = one.cluster(2);
    one.cluster(1).sendMessage(2, msg(1, 0));
    one.advance(100);
    const [x, y] = receive(to);
    expect(x).toEqual(msg(1, 0));
    expect(x).toEqual(y);
    expect(x).not.toBe(y);
  });

  it('copies a message when it is sent', () => {
    const net = new LocalNetwork<Cmd>();
    const to = net.cluster(2);
    const sent = {
      type: 'append' as const,
      from: 1,
      term: 1,
      prevLogIndex: 0,
      prevLogTerm: 0,
      leaderCommit: 0,
      round: 0,
      entries: [{ index: 1, term: 1, kind: 'transition' as const, transition: { id: 7 } }],
    };
    net.cluster(1).sendMessage(2, sent);
    sent.entries[0]!.transition = { id: 99 };
    sent.entries.push({ index: 2, term: 1, kind: 'transition', transition: { id: 8 } });
    net.advance(100);
    const [got] = receive(to);
    expect(got).toEqual({ ...sent, entries: [{ index: 1, term: 1, kind: 'transition', transition: { id: 7 } }] });
  });

  it('holds messages for a node until it polls, and counts every message', () => {
    const { net } = run(4, 1000, { loss: 0.2, duplication: 0.2 });
    const s = net.stats;
    expect(s.sent + s.duplicated).toBe(s.delivered + s.dropped);
    expect(net.nextDeliveryTime()).toBeUndefined();
  });

  it('drops messages to an id that has no cluster', () => {
    const net = new LocalNetwork<Cmd>();
    net.cluster(1).sendMessage(9, msg(1, 0));
    expect(net.stats.dropped).toBe(1);
    expect(net.isUp(9)).toBe(false);
  });

  it('applies new fault rates from setFaults', () => {
    const net = new LocalNetwork<Cmd>();
    const a = net.cluster(1);
    const b = net.cluster(2);
    net.setFaults({ loss: 1 });
    a.sendMessage(2, msg(1, 0));
    net.setFaults({ loss: 0, minDelay: 50, maxDelay: 50 });
    a.sendMessage(2, msg(1, 1));
    expect(net.nextDeliveryTime()).toBe(50);
    net.advance(50);
    expect(numbers(receive(b))).toEqual([1]);
    expect(() => net.setFaults({ minDelay: 60 })).toThrow(/minDelay/);
    expect(() => net.setFaults({ duplication: 2 })).toThrow(TypeError);
  });
});

describe('LocalNetwork faults', () => {
  const three = () => {
    const net = new LocalNetwork<Cmd>({ minDelay: 5, maxDelay: 5 });
    const c = [1, 2, 3].map((id) => net.cluster(id));
    const broadcast = (n: number) => {
      for (const from of c) for (const to of c) if (from !== to) from.sendMessage(to.id, msg(from.id, n));
    };
    const inboxes = () =>
      c.map((x) =>
        receive(x)
          .map((m) => m.from)
          .sort(),
      );
    return { net, c, broadcast, inboxes };
  };

  it('isolates a node from everyone until healed', () => {
    const { net, broadcast, inboxes } = three();
    net.isolate(1);
    broadcast(0);
    net.advance(5);
    expect(inboxes()).toEqual([[], [3], [2]]);
    net.heal();
    broadcast(1);
    net.advance(5);
    expect(inboxes()).toEqual([
      [2, 3],
      [1, 3],
      [1, 2],
    ]);
  });

  it('partitions into groups; an id in no group hears no one', () => {
    const { net, broadcast, inboxes } = three();
    net.partition([[1, 2]]);
    broadcast(0);
    net.advance(5);
    expect(inboxes()).toEqual([[2], [1], []]);
    net.partition([[1], [2, 3]]);
    broadcast(1);
    net.advance(5);
    expect(inboxes()).toEqual([[], [3], [2]]);
    expect(() =>
      net.partition([
        [1, 2],
        [2, 3],
      ]),
    ).toThrow(/two groups/);
  });

  it('loses messages in flight across a new partition, but not once healed before arrival', () => {
    const { net, broadcast, inboxes } = three();
    broadcast(0);
    net.partition([[1, 2], [3]]);
    net.advance(5);
    expect(inboxes()).toEqual([[2], [1], []]);
    net.heal();
    broadcast(1);
    net.partition([[1], [2], [3]]);
    net.heal();
    net.advance(5);
    expect(inboxes()).toEqual([
      [2, 3],
      [1, 3],
      [1, 2],
    ]);
  });

  it('crash discards inbound messages, drops new ones and halts the cluster', () => {
    const { net, c, broadcast, inboxes } = three();
    const [one, two] = c as [(typeof c)[0], (typeof c)[0], (typeof c)[0]];
    broadcast(0);
    net.crash(2);
    expect(net.isUp(2)).toBe(false);
    expect(two.halt()).toBe(true);
    expect(one.halt()).toBe(false);
    two.sendMessage(1, msg(2, 9)); // a crashed node sends nothing
    one.sendMessage(2, msg(1, 9)); // and receives nothing
    net.advance(5);
    // Messages 2 sent before the crash were already on the wire.
    expect(inboxes()).toEqual([[2, 3], [], [1, 2]]);
    expect(net.stats.dropped).toBe(2 + 2);
  });

  it('restart gives a new working cluster and retires the old one', () => {
    const { net, c } = three();
    const old = c[1]!;
    old.registerLeader(1);
    expect(old.leaderId).toBe(1);
    net.crash(2);
    expect(net.leaderViews().get(2)).toBeUndefined();
    const fresh = net.restart(2);
    expect(fresh).not.toBe(old);
    expect(net.cluster(2)).toBe(fresh);
    expect(net.isUp(2)).toBe(true);
    expect(fresh.halt()).toBe(false);
    expect(old.halt()).toBe(true);
    expect(fresh.leaderId).toBeUndefined();
    c[0]!.sendMessage(2, msg(1, 0));
    fresh.sendMessage(1, msg(2, 1));
    old.sendMessage(1, msg(2, 2)); // the old incarnation cannot send
    old.registerLeader(3); // nor change the views
    net.advance(5);
    expect(receive(old)).toEqual([]); // nor steal messages
    expect(numbers(receive(fresh))).toEqual([0]);
    expect(numbers(receive(c[0]!))).toEqual([1]);
    fresh.registerLeader(1);
    expect(net.leaderViews()).toEqual(
      new Map([
        [1, undefined],
        [2, 1],
        [3, undefined],
      ]),
    );
  });

  it('restarting a running node crashes it first', () => {
    const { net, c } = three();
    c[0]!.sendMessage(2, msg(1, 0));
    const fresh = net.restart(2);
    expect(c[1]!.halt()).toBe(true);
    net.advance(5);
    expect(receive(fresh)).toEqual([]);
  });

  it('stop halts every cluster and moves no more messages', () => {
    const { net, c } = three();
    c[0]!.sendMessage(2, msg(1, 0));
    net.stop();
    expect(net.stopped).toBe(true);
    expect(c.map((x) => x.halt())).toEqual([true, true, true]);
    expect(net.restart(3).halt()).toBe(true);
    net.advance(5);
    expect(receive(c[1]!)).toEqual([]);
  });

  it('records membership reports', () => {
    const net = new LocalNetwork<Cmd>();
    const c = net.cluster(1);
    expect(c.memberIds).toBeUndefined();
    c.registerMembership([1, 2, 3]);
    expect(c.memberIds).toEqual([1, 2, 3]);
  });
});

describe('LocalNetwork clock and options', () => {
  it('starts at startTime and only moves forward', () => {
    const net = new LocalNetwork<Cmd>({ startTime: 1000 });
    const clock = net.clock;
    expect(clock()).toBe(1000);
    net.advance(5);
    net.advanceTo(1005);
    expect(net.now()).toBe(1005);
    expect(clock()).toBe(1005);
    expect(() => net.advanceTo(1004)).toThrow(RangeError);
    expect(() => net.advance(-1)).toThrow(RangeError);
    expect(() => net.advance(NaN)).toThrow(RangeError);
    expect(net.now()).toBe(1005);
  });

  it('validates its options', () => {
    const bad = [
      { loss: -0.1 },
      { loss: 1.5 },
      { duplication: NaN },
      { minDelay: -1 },
      { minDelay: 6, maxDelay: 5 },
      { maxDelay: Infinity },
      { seed: 1.5 },
      { startTime: NaN },
    ];
    for (const o of bad) expect(() => new LocalNetwork<Cmd>(o), JSON.stringify(o)).toThrow(TypeError);
    expect(() => new LocalNetwork<Cmd>({ minDelay: 6, maxDelay: 5 })).toThrow(
      /minDelay \(6\) must not exceed maxDelay \(5\)/,
    );
    expect(() => new LocalNetwork<Cmd>({ loss: 1, duplication: 0, minDelay: 0, maxDelay: 0 })).not.toThrow();
  });

  it('stays cheap with 10^5 messages', () => {
    const { received } = run(1, 100_000, { minDelay: 1, maxDelay: 1000 });
    expect(received).toHaveLength(100_000);
  });
});
