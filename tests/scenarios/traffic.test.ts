import { describe, expect, it } from 'vitest';
import type { AppendRequest, AppendResponse } from '../../src/index.js';
import type { TestTransition } from '../helpers/recording-state-machine.js';
import { ScenarioSimulation, commands } from '../helpers/scenario-sim.js';

describe('bounded message counts', () => {
  for (const size of [3, 5]) {
    it(`${size} replicas: an idle leader sends exactly one heartbeat per peer per heartbeatTimeout, and nothing else moves`, async () => {
      const heartbeat = 50;
      const periods = 10;
      // Fixed 2 ms delays and 1 ms steps keep every event on an integer millisecond.
      const sim = new ScenarioSimulation({
        size,
        seed: 91,
        heartbeatTimeout: heartbeat,
        network: { minDelay: 2, maxDelay: 2 },
      });
      const step = () => sim.step(1);
      const leader = await (async () => {
        while (!sim.leader()) await step();
        return sim.leader()!;
      })();
      leader.sm.submit(...commands('c', 5));
      while (!sim.ids.every((id) => sim.node(id).sm.appliedIds.length === 5)) await step();
      for (let i = 0; i < 3 * heartbeat; i++) await step();

      // Start the window right at a heartbeat.
      const before = sim.sent.length;
      while (sim.sent.length === before) await step();
      const start = sim.sent[before]!.at;
      expect(sim.sent[before]!.from).toBe(leader.id);
      const stats0 = sim.network.stats;
      const elections0 = sim.live().reduce((s, n) => s + n.replica.metrics.electionsStarted, 0);
      const term = leader.replica.status.term;
      while (sim.now < start + periods * heartbeat) await step();
      const window = sim.sent.filter((r) => r.at >= start && r.at < start + periods * heartbeat);

      const peers = sim.ids.filter((id) => id !== leader.id);
      for (const peer of peers) {
        const beats = window.filter((r) => r.from === leader.id && r.to === peer);
        expect(
          beats.map((r) => r.at - start),
          `heartbeats to ${peer}`,
        ).toEqual(Array.from({ length: periods }, (_, i) => i * heartbeat));
        for (const r of beats) {
          expect(r.message.type).toBe('append');
          expect((r.message as AppendRequest<TestTransition>).entries).toEqual([]);
        }
        const answers = window.filter((r) => r.from === peer);
        expect(
          answers.map((r) => r.at - start),
          `answers of ${peer}`,
        ).toEqual(beats.map((r) => r.at - start + 2));
        for (const r of answers) {
          expect(r.to).toBe(leader.id);
          expect(r.message.type).toBe('appendResponse');
          expect((r.message as AppendResponse).success).toBe(true);
        }
      }
      expect(window).toHaveLength(2 * periods * peers.length);
      expect(sim.network.stats.sent - stats0.sent).toBe(2 * periods * peers.length);
      expect(sim.live().reduce((s, n) => s + n.replica.metrics.electionsStarted, 0)).toBe(elections0);
      for (const n of sim.live()) expect(n.replica.status).toMatchObject({ term, leaderId: leader.id });
    });
  }
});

describe('one AppendEntries object per point in the log', () => {
  it('a leader hands followers at the same point the same message objects, its whole run of them', async () => {
    const sim = new ScenarioSimulation({
      size: 5,
      seed: 17,
      maxEntriesPerMessage: 4,
      network: { minDelay: 2, maxDelay: 2 },
    });
    while (!sim.leader()) await sim.step(1);
    const leader = sim.leader()!;
    leader.sm.submit(...commands('warm', 3));
    while (!sim.ids.every((id) => sim.node(id).sm.appliedIds.length === 3)) await sim.step(1);
    const before = sim.sent.length;
    leader.sm.submit(...commands('c', 12)); // three messages' worth, taken in one tick
    while (!sim.ids.every((id) => sim.node(id).sm.appliedIds.length === 15)) await sim.step(1);
    const appends = sim.sent
      .slice(before)
      .filter((r) => r.from === leader.id && (r.message as AppendRequest<TestTransition>).entries.length > 0);
    const peers = sim.ids.filter((id) => id !== leader.id);
    const runs = peers.map((peer) => appends.filter((r) => r.to === peer).map((r) => r.message));
    expect(runs[0]!.map((m) => (m as AppendRequest<TestTransition>).entries.length)).toEqual([4, 4, 4]);
    for (const run of runs.slice(1)) {
      expect(run).toHaveLength(3);
      run.forEach((m, i) => expect(m).toBe(runs[0]![i]));
    }
  });
});
