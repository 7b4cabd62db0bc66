import { describe, expect, it } from 'vitest';
import { raftOf } from '../helpers/simulation.js';
import { ScenarioSimulation, commands } from '../helpers/scenario-sim.js';

/** Every live replica agrees on one leader, in one term, in its status and its registerLeader view. */
function expectOneLeader(sim: ScenarioSimulation): number {
  const leaders = sim.live().filter((n) => n.replica.status.role === 'leader');
  expect(leaders.map((n) => n.id)).toHaveLength(1);
  const leader = leaders[0]!;
  const { term, id } = leader.replica.status;
  for (const n of sim.live()) {
    expect(n.replica.status, `replica ${n.id}`).toMatchObject({
      term,
      leaderId: id,
      role: n.id === id ? 'leader' : 'follower',
    });
  }
  const views = sim.network.leaderViews();
  for (const n of sim.live()) expect(views.get(n.id), `registerLeader view of ${n.id}`).toBe(id);
  return id;
}

describe('initial election', () => {
  for (const size of [3, 5]) {
    it(`${size} replicas elect exactly one leader, followed by all, within 1.5 s of virtual time`, async () => {
      for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
        const sim = new ScenarioSimulation({ size, seed });
        await sim.stableLeader(1_500);
        const id = expectOneLeader(sim);
        // The leadership is stable: no further elections while nothing fails.
        const elections = sim.live().reduce((s, n) => s + n.replica.metrics.electionsStarted, 0);
        await sim.run(1_000);
        expect(expectOneLeader(sim), `seed ${seed}`).toBe(id);
        expect(
          sim.live().reduce((s, n) => s + n.replica.metrics.electionsStarted, 0),
          `seed ${seed}`,
        ).toBe(elections);
      }
    });
  }
});

describe('re-election after the leader crashes', () => {
  for (const size of [3, 5]) {
    it(`${size} replicas: a new leader in a higher term within 1 s; commands still commit`, async () => {
      for (const seed of [11, 12, 13, 14]) {
        const sim = new ScenarioSimulation({ size, seed });
        const old = await sim.stableLeader(1_500);
        const oldTerm = old.replica.status.term;
        old.sm.submit(...commands('before', 3));
        await sim.untilApplied(
          sim.ids,
          commands('before', 3).map((c) => c.id),
          1_000,
        );
        sim.crash(old.id);
        const crashedAt = sim.now;
        const leader = await sim.stableLeader(1_000);
        expect(leader.id).not.toBe(old.id);
        expect(leader.replica.status.term).toBeGreaterThan(oldTerm);
        expect(sim.now - crashedAt).toBeLessThan(1_000);
        expectOneLeader(sim);
        const after = commands('after', 5);
        leader.sm.submit(...after);
        const live = sim.live().map((n) => n.id);
        await sim.untilApplied(
          live,
          after.map((c) => c.id),
          1_000,
          `seed ${seed}: commands after re-election`,
        );
        for (const c of after) expect(leader.sm.statusesOf(c.id)).toEqual(['queued', 'committed', 'applied']);
        // The old leader comes back as a follower and catches up on everything.
        sim.restart(old.id);
        await sim.untilApplied(
          [old.id],
          ['before0', 'before1', 'before2', ...after.map((c) => c.id)],
          2_000,
          'old leader catching up',
        );
        expect(sim.node(old.id).sm.appliedIds).toEqual(leader.sm.appliedIds);
      }
    });
  }
});

describe('no leader without a majority', () => {
  it('5 replicas with 3 crashed (the leader among them): the 2 survivors never elect nor commit; restarts resume progress', async () => {
    const sim = new ScenarioSimulation({ size: 5, seed: 21 });
    const leader = await sim.stableLeader(1_500);
    leader.sm.submit(...commands('a', 3));
    await sim.untilApplied(sim.ids, ['a0', 'a1', 'a2'], 1_000);
    const down = [leader.id, ...sim.ids.filter((id) => id !== leader.id).slice(0, 2)];
    for (const id of down) sim.crash(id);
    const survivors = sim.ids.filter((id) => !down.includes(id));
    const commitAt = new Map(survivors.map((id) => [id, sim.node(id).replica.status.commitIndex]));
    const end = sim.now + 5_000;
    let submitted = 0;
    while (sim.now < end) {
      await sim.step();
      if (sim.steps % 50 === 0) sim.node(survivors[submitted % 2]!).sm.submit({ id: `lost${submitted++}` });
      for (const id of survivors) {
        const s = sim.node(id).replica.status;
        expect(s.role, `replica ${id} at ${sim.now}`).not.toBe('leader');
        expect(s.commitIndex).toBe(commitAt.get(id));
      }
    }
    // They did try: elections happened, and nothing submitted there was accepted.
    // With pre-vote (the default) a minority never even raises its term: it cannot win a pre-vote.
    for (const id of survivors) expect(sim.node(id).replica.metrics.electionsStarted).toBe(0);
    for (let i = 0; i < submitted; i++) {
      const where = sim.node(survivors[i % 2]!).sm;
      expect(where.statusesOf(`lost${i}`)).toEqual(['abandoned:not-leader']);
    }
    for (const id of down) sim.restart(id);
    const next = await sim.stableLeader(3_000);
    next.sm.submit(...commands('b', 5));
    await sim.untilApplied(
      sim.ids,
      commands('b', 5).map((c) => c.id),
      2_000,
      'progress after restarts',
    );
    for (const n of sim.nodes.values())
      expect(n.sm.appliedIds).toEqual(['a0', 'a1', 'a2', 'b0', 'b1', 'b2', 'b3', 'b4']);
  });

  it('5 replicas partitioned 3+2: the 2-side never elects nor commits; after healing, all 5 apply new commands', async () => {
    const sim = new ScenarioSimulation({ size: 5, seed: 22 });
    const leader = await sim.stableLeader(1_500);
    const followers = sim.ids.filter((id) => id !== leader.id);
    const minority = followers.slice(0, 2);
    const majority = sim.ids.filter((id) => !minority.includes(id));
    sim.network.partition([majority, minority]);
    const commitAt = new Map(minority.map((id) => [id, sim.node(id).replica.status.commitIndex]));
    const lastAt = new Map(minority.map((id) => [id, sim.node(id).replica.status.lastLogIndex]));
    const end = sim.now + 5_000;
    let n = 0;
    while (sim.now < end) {
      await sim.step();
      if (sim.steps % 40 === 0) {
        sim.node(minority[n % 2]!).sm.submit({ id: `minor${n}` });
        sim.leader()?.sm.submit({ id: `major${n}` });
        n++;
      }
      for (const id of minority) {
        const s = sim.node(id).replica.status;
        expect(s.role, `replica ${id} at ${sim.now}`).not.toBe('leader');
        expect(s.commitIndex).toBe(commitAt.get(id));
        expect(s.lastLogIndex).toBe(lastAt.get(id));
      }
    }
    // The majority kept committing meanwhile.
    const majorIds = Array.from({ length: n }, (_, i) => `major${i}`);
    await sim.untilApplied(majority, majorIds, 1_000);
    for (const id of minority) expect(sim.node(id).sm.appliedIds).toEqual([]);
    sim.network.heal();
    const after = await sim.stableLeader(3_000);
    after.sm.submit(...commands('healed', 3));
    await sim.untilApplied(sim.ids, [...majorIds, 'healed0', 'healed1', 'healed2'], 2_000, 'progress after healing');
    for (const id of minority) expect(sim.node(id).sm.appliedIds).toEqual(after.sm.appliedIds);
    for (let i = 0; i < n; i++) {
      for (const x of sim.nodes.values()) expect(x.sm.appliedIds).not.toContain(`minor${i}`);
    }
    expect(raftOf(after.replica)!.commitIndex).toBe(raftOf(after.replica)!.log.lastIndex);
  });

  it('5 replicas partitioned 2+3 with the old leader on the 2-side: no new leader there, and the old leader commits nothing', async () => {
    const sim = new ScenarioSimulation({ size: 5, seed: 23 });
    const old = await sim.stableLeader(1_500);
    const term = old.replica.status.term;
    const minority = [old.id, sim.ids.find((id) => id !== old.id)!];
    const majority = sim.ids.filter((id) => !minority.includes(id));
    sim.network.partition([minority, majority]);
    // Acknowledgements that arrived before the cut may still commit what the log held then;
    // nothing appended after it may commit.
    const committed = old.replica.status.lastLogIndex;
    const commitAt = new Map(minority.map((id) => [id, committed]));
    old.sm.submit(...commands('stuck', 5));
    const end = sim.now + 3_000;
    while (sim.now < end) {
      await sim.step();
      for (const id of minority) {
        const s = sim.node(id).replica.status;
        // The deposed-but-unaware leader may keep its old term's role; nobody there wins a new term.
        if (s.role === 'leader') expect(s.term, `replica ${id} at ${sim.now}`).toBe(term);
        expect(s.commitIndex).toBeLessThanOrEqual(commitAt.get(id)!);
      }
    }
    // The stuck commands reached the old leader's follower but never committed.
    expect(sim.node(minority[1]!).replica.status.lastLogIndex).toBeGreaterThanOrEqual(commitAt.get(minority[1]!)! + 5);
    for (const c of commands('stuck', 5)) expect(old.sm.statusesOf(c.id)).toEqual(['queued']);
    const next = sim.leader()!;
    expect(majority).toContain(next.id);
    sim.network.heal();
    const leader = await sim.stableLeader(3_000);
    leader.sm.submit({ id: 'go' });
    await sim.untilApplied(sim.ids, ['go'], 2_000);
    for (const n of sim.nodes.values())
      for (const c of commands('stuck', 5)) expect(n.sm.appliedIds).not.toContain(c.id);
    for (const c of commands('stuck', 5))
      expect(old.sm.statusesOf(c.id)).toEqual(['queued', 'abandoned:conflict-with-leader']);
  });
});
