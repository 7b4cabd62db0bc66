import { describe, expect, it } from 'vitest';
import { LocalNetwork, MemoryStorage, deriveSeed, seededRandom } from '../../src/index.js';
import type { RaftHost } from '../../src/multi.js';
import { RecordingStateMachine, type TestTransition } from '../helpers/recording-state-machine.js';
import { simHost, testGroup } from './hosts.js';

type Host = RaftHost<TestTransition>;

/** `processes` hosts sharing `groups` groups (each on every process), ticked by hand every 2 ms. */
function cluster(groups: number, processes = 3, quiesce = true) {
  const net = new LocalNetwork<never>({ seed: 5 });
  const ids = Array.from({ length: processes }, (_, i) => i + 1);
  const sms = new Map<string, RecordingStateMachine>();
  const storages = new Map<string, MemoryStorage<TestTransition, unknown>>();
  const hosts = new Map<number, Host>();
  const boot = (id: number, epoch: number): Host => {
    const host: Host = simHost(net, id, epoch, quiesce);
    for (let g = 1; g <= groups; g++) {
      const sm = new RecordingStateMachine(id);
      sms.set(`${g}/${id}`, sm);
      const key = `${g}/${id}`;
      if (!storages.has(key)) storages.set(key, new MemoryStorage());
      host.createGroup(g, testGroup(ids, sm, storages.get(key)!, seededRandom(deriveSeed(g, id * 10 + epoch))));
    }
    hosts.set(id, host);
    return host;
  };
  for (const id of ids) boot(id, 0);
  const down = new Set<number>();
  const run = async (ms: number) => {
    for (const end = net.now() + ms; net.now() < end;) {
      net.advance(2);
      for (const [id, h] of hosts) if (!down.has(id)) await h.tick();
    }
  };
  const leaderOf = (g: number) => ids.find((id) => !down.has(id) && hosts.get(id)!.group(g)!.status.role === 'leader');
  const allQuiescent = () => [...hosts].every(([id, h]) => down.has(id) || h.groupIds().every((g) => h.isQuiescent(g)));
  return { net, ids, hosts, sms, run, leaderOf, allQuiescent, down, boot };
}

const sum = (hosts: Map<number, Host>, k: 'groupTicks' | 'envelopesSent' | 'messagesSent') =>
  [...hosts.values()].reduce((n, h) => n + h.stats[k], 0);

describe('RaftHost', () => {
  it('sends one envelope per peer per tick at most, however many groups have messages', async () => {
    const c = cluster(20, 3, false);
    await c.run(1_000);
    for (const h of c.hosts.values()) {
      expect(h.stats.envelopesSent).toBeLessThanOrEqual(h.stats.ticks * 2);
      expect(h.stats.messagesSent).toBeGreaterThan(1.5 * h.stats.envelopesSent);
    }
    for (let g = 1; g <= 20; g++) expect(c.leaderOf(g)).toBeDefined();
  });

  it('quiesces idle groups: they are ticked no more, and the message rate does not depend on the group count', async () => {
    const rates: number[] = [];
    for (const groups of [2, 40]) {
      const c = cluster(groups);
      await c.run(2_000);
      expect(c.allQuiescent()).toBe(true);
      const [ticks, envelopes] = [sum(c.hosts, 'groupTicks'), sum(c.hosts, 'envelopesSent')];
      await c.run(2_000);
      expect(sum(c.hosts, 'groupTicks')).toBe(ticks);
      rates.push(sum(c.hosts, 'envelopesSent') - envelopes);
    }
    // The process heartbeat only: 3 processes × 2 peers × one per 20 ms (a tick is 2 ms) over 2 s.
    expect(rates[0]).toBe(rates[1]);
    expect(rates[0]).toBeLessThanOrEqual(6 * (2_000 / 20));
  });

  it('without quiescence every group is ticked on every round', async () => {
    const c = cluster(10, 3, false);
    await c.run(1_000);
    const ticks = sum(c.hosts, 'groupTicks');
    await c.run(200);
    expect(sum(c.hosts, 'groupTicks') - ticks).toBe(3 * 10 * 100);
  });

  it('a quiescent group wakes for a proposal, commits it, and quiesces again', async () => {
    const c = cluster(4);
    await c.run(2_000);
    expect(c.allQuiescent()).toBe(true);
    const leader = c.leaderOf(3)!;
    c.sms.get(`3/${leader}`)!.submit({ id: 'w1' });
    c.hosts.get(leader)!.group(3)!.wake();
    // The leader quiesces the group only once its state has stood still for quiesceAfter (twice
    // the heartbeat, 40 ms): counted from its last change, the write's application, not the wake.
    const applied = c.sms.get(`3/${leader}`)!.appliedIds;
    while (!applied.includes('w1')) await c.run(2);
    const appliedAt = c.net.now();
    while (!c.hosts.get(leader)!.isQuiescent(3)) await c.run(2);
    expect(c.net.now() - appliedAt).toBeGreaterThanOrEqual(40);
    for (const id of c.ids) expect(c.sms.get(`3/${id}`)!.appliedIds).toContain('w1');
    expect(c.hosts.get(leader)!.isQuiescent(1)).toBe(true); // the others slept through it
    await c.run(500);
    expect(c.allQuiescent()).toBe(true);
  });

  it('a readIndex on a quiescent leader settles (the request wakes its group)', async () => {
    const c = cluster(2);
    await c.run(2_000);
    const leader = c.leaderOf(1)!;
    let read = false;
    void c.hosts
      .get(leader)!
      .group(1)!
      .readIndex()
      .then(() => (read = true));
    await c.run(100);
    expect(read).toBe(true);
  });

  it('the crash of a process wakes the quiescent groups it led: each elects a leader elsewhere', async () => {
    const c = cluster(12);
    await c.run(2_000);
    expect(c.allQuiescent()).toBe(true);
    const victim = c.leaderOf(1)!;
    const led = Array.from({ length: 12 }, (_, i) => i + 1).filter((g) => c.leaderOf(g) === victim);
    c.net.crash(victim);
    c.down.add(victim);
    // Suspicion (60 ms) plus at most two election timeouts (200 ms each), with room for a split vote.
    await c.run(700);
    for (const g of led) expect([undefined, victim]).not.toContain(c.leaderOf(g));
    // A quick restart is noticed through the new epoch, and the restarted members catch up and quiesce.
    c.down.delete(victim);
    c.boot(victim, 1);
    await c.run(2_000);
    expect(c.allQuiescent()).toBe(true);
  });

  it('balanceLeaders spreads the leaders again after a process restarts leading nothing', async () => {
    const c = cluster(12);
    await c.run(1_000);
    c.net.crash(1);
    c.down.add(1);
    await c.run(1_000);
    c.down.delete(1);
    c.boot(1, 1);
    await c.run(1_000);
    const led = () =>
      c.ids.map(
        (id) =>
          c.hosts
            .get(id)!
            .groupIds()
            .filter((g) => c.leaderOf(g) === id).length,
      );
    expect(led()[0]).toBe(0);
    for (let i = 0; i < 10; i++) {
      for (const h of c.hosts.values()) h.balanceLeaders();
      await c.run(300);
    }
    const counts = led();
    expect(counts.reduce((a, b) => a + b)).toBe(12);
    expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
    await c.run(1_000);
    expect(c.allQuiescent()).toBe(true);
  });

  it('groups come and go at run time; messages for a group a process does not host are dropped', async () => {
    const c = cluster(2);
    await c.run(1_000);
    await c.hosts.get(1)!.removeGroup(2);
    expect(c.hosts.get(1)!.groupIds()).toEqual([1]);
    await c.hosts.get(1)!.removeGroup(2); // twice is fine
    c.hosts.get(2)!.group(2)!.wake();
    await c.run(1_000);
    expect(c.hosts.get(1)!.stats.unknownGroup).toBeGreaterThan(0);
    expect(() => c.hosts.get(1)!.createGroup(1, {} as never)).toThrow(TypeError);
    expect(() => c.hosts.get(1)!.createGroup(9, testGroup([2, 3], new RecordingStateMachine(1)))).toThrow(
      /must include this process/,
    );
    await expect(c.hosts.get(2)!.group(1)!.start()).rejects.toThrow(/ticked by its RaftHost/);
  });
});
