import { describe, expect, it } from 'vitest';
import type { AppendResponse } from '../../src/index.js';
import { raftOf } from '../helpers/simulation.js';
import { ScenarioSimulation, commands } from '../helpers/scenario-sim.js';

describe('agreement with a minority down', () => {
  it('5 replicas, 2 crashed: 100 commands commit and apply on the 3 live replicas in the same order', async () => {
    const sim = new ScenarioSimulation({ size: 5, seed: 31, network: { minDelay: 1, maxDelay: 8 } });
    const leader = await sim.stableLeader(1_500);
    const down = sim.ids.filter((id) => id !== leader.id).slice(0, 2);
    for (const id of down) sim.crash(id);
    const live = sim.ids.filter((id) => !down.includes(id));
    const cmds = commands('c', 100);
    // Submitted in bursts while the cluster runs, so batches of varying size go out.
    for (let i = 0; i < cmds.length;) {
      const burst = 1 + (i % 7);
      leader.sm.submit(...cmds.slice(i, i + burst));
      i += burst;
      await sim.step();
    }
    await sim.untilApplied(
      live,
      cmds.map((c) => c.id),
      2_000,
    );
    const order = cmds.map((c) => c.id);
    for (const id of live) expect(sim.node(id).sm.appliedIds, `replica ${id}`).toEqual(order);
    for (const c of cmds) expect(leader.sm.statusesOf(c.id)).toEqual(['queued', 'committed', 'applied']);
    for (const id of live)
      if (id !== leader.id) for (const c of cmds) expect(sim.node(id).sm.statusesOf(c.id)).toEqual(['applied']);
    // The same entries at the same indexes, in the same terms.
    for (const id of live) expect(sim.logOf(id)).toEqual(sim.logOf(leader.id));
    expect(leader.replica.status.term).toBe(sim.node(live.find((id) => id !== leader.id)!).replica.status.term);
  });
});

describe('a partitioned old leader rejoins', () => {
  it('its uncommitted entries are reported conflict-with-leader, never applied anywhere, and logs converge', async () => {
    const sim = new ScenarioSimulation({ size: 5, seed: 41 });
    const old = await sim.stableLeader(1_500);
    const oldTerm = old.replica.status.term;
    old.sm.submit(...commands('pre', 3));
    await sim.untilApplied(sim.ids, ['pre0', 'pre1', 'pre2'], 1_000);

    sim.network.isolate(old.id);
    const stale = commands('stale', 5);
    old.sm.submit(...stale);
    await sim.run(50);
    for (const c of stale) expect(old.sm.statusesOf(c.id)).toEqual(['queued']);
    const committedBefore = old.replica.status.commitIndex;

    await sim.runUntil(() => (sim.leader()?.replica.status.term ?? 0) > oldTerm, 2_000, 'a new leader');
    const next = sim.leader()!;
    expect(next.id).not.toBe(old.id);
    const fresh = commands('fresh', 5);
    next.sm.submit(...fresh);
    const others = sim.ids.filter((id) => id !== old.id);
    await sim.untilApplied(
      others,
      fresh.map((c) => c.id),
      1_000,
    );
    // Still uncommitted on the old leader, which believes it leads.
    expect(old.replica.status.commitIndex).toBe(committedBefore);
    for (const c of stale) expect(old.sm.statusesOf(c.id)).toEqual(['queued']);

    sim.network.heal();
    await sim.untilApplied(
      [old.id],
      fresh.map((c) => c.id),
      2_000,
      'old leader catching up',
    );
    await sim.run(200);
    for (const c of stale) expect(old.sm.statusesOf(c.id), c.id).toEqual(['queued', 'abandoned:conflict-with-leader']);
    for (const n of sim.nodes.values()) {
      for (const c of stale) expect(n.sm.appliedIds, `replica ${n.id}`).not.toContain(c.id);
      expect(n.sm.appliedIds).toEqual(['pre0', 'pre1', 'pre2', ...fresh.map((c) => c.id)]);
    }
    const reference = sim.logOf(sim.leader()!.id);
    for (const id of sim.ids) expect(sim.logOf(id), `log of ${id}`).toEqual(reference);
    expect(reference.some((e) => e.includes(':stale'))).toBe(false);
  });
});

describe('backup over long divergent logs', () => {
  it('after healing, followers with 50 divergent entries converge with a few rejections, not one per entry', async () => {
    const sim = new ScenarioSimulation({ size: 5, seed: 51 });
    const l1 = await sim.stableLeader(1_500);
    l1.sm.submit(...commands('base', 5));
    await sim.untilApplied(
      sim.ids,
      commands('base', 5).map((c) => c.id),
      1_000,
    );
    const [f1, f2, f3, f4] = sim.ids.filter((id) => id !== l1.id) as [number, number, number, number];
    const sideA = [l1.id, f1];

    // Side A (old leader + one follower) gets 50 entries it can never commit.
    sim.network.partition([sideA, [f2, f3, f4]]);
    l1.sm.submit(...commands('a', 50));
    await sim.runUntil(
      () =>
        sim.node(f1).replica.status.lastLogIndex >= l1.replica.status.lastLogIndex &&
        l1.replica.status.lastLogIndex > 55,
      1_000,
      'side A replicating',
    );

    // Side B elects a leader, then loses one member and gets 50 uncommitted entries of its own.
    await sim.runUntil(
      () => [f2, f3, f4].some((id) => sim.node(id).replica.status.role === 'leader'),
      2_000,
      'side B electing',
    );
    const l2 = sim.node([f2, f3, f4].find((id) => sim.node(id).replica.status.role === 'leader')!);
    const l2peer = [f2, f3, f4].filter((id) => id !== l2.id)[0]!;
    const loner = [f2, f3, f4].filter((id) => id !== l2.id)[1]!;
    await sim.runUntil(
      () => sim.node(loner).replica.status.commitIndex === l2.replica.status.lastLogIndex,
      1_000,
      'side B noop committed',
    );
    sim.network.partition([sideA, [l2.id, l2peer], [loner]]);
    l2.sm.submit(...commands('b', 50));
    await sim.runUntil(
      () =>
        sim.node(l2peer).replica.status.lastLogIndex >= l2.replica.status.lastLogIndex &&
        l2.replica.status.lastLogIndex > 55,
      1_000,
      'side B replicating',
    );
    const baseCommit = l2.replica.status.commitIndex;
    for (const id of sim.ids) expect(sim.node(id).replica.status.commitIndex).toBeLessThanOrEqual(baseCommit);
    for (const id of sideA) expect(sim.logOf(id).filter((e) => e.endsWith(':a0') || /:a\d+$/.test(e))).toHaveLength(50);

    // L2 crashes and the partition heals for everyone but the loner. Only L2's peer (the higher
    // last term) can win a vote among {L1, F1, peer}; as a new leader it starts probing at its
    // last index, so it must back side A up over 50 divergent entries.
    sim.crash(l2.id);
    sim.network.partition([[...sideA, l2peer], [loner]]);
    const healedAt = sim.now;
    let leaderSince = -1;
    const group = [...sideA, l2peer];
    await sim.runUntil(
      () => {
        const s = sim.node(l2peer).replica.status;
        if (s.role !== 'leader') return false;
        if (leaderSince < 0) leaderSince = sim.now;
        const ref = sim.logOf(l2peer).join();
        return group.every((id) => sim.logOf(id).join() === ref);
      },
      3_000,
      'logs converging',
    );
    const convergedIn = sim.now - leaderSince;
    await sim.runUntil(
      () =>
        group.every((id) => sim.node(id).replica.status.commitIndex === sim.node(l2peer).replica.status.lastLogIndex),
      500,
      'commit',
    );
    const rejections = sim
      .sentSince(healedAt)
      .filter(
        (r) => sideA.includes(r.from) && r.message.type === 'appendResponse' && !(r.message as AppendResponse).success,
      );
    console.log(
      `backup: converged ${convergedIn.toFixed(1)} ms after the election (${(sim.now - healedAt).toFixed(1)} ms after healing), ${rejections.length} rejections from side A`,
    );
    // One-entry-per-round-trip backtracking needs 50 rejections per side-A replica (100 in all)...
    expect(rejections.length).toBeLessThanOrEqual(6);
    // ...and 50 round trips of at least 2 ms each; fast backup takes a handful.
    expect(convergedIn).toBeLessThan(50);
    for (const c of commands('a', 50))
      expect(l1.sm.statusesOf(c.id)).toEqual(['queued', 'abandoned:conflict-with-leader']);

    // Everyone back: all five converge on base + b.
    sim.network.heal();
    sim.restart(l2.id);
    const final = commands('z', 2);
    const leader = await sim.stableLeader(3_000);
    leader.sm.submit(...final);
    const expected = [...commands('base', 5), ...commands('b', 50), ...final].map((c) => c.id);
    await sim.untilApplied(sim.ids, expected, 2_000);
    for (const n of sim.nodes.values()) expect(n.sm.appliedIds, `replica ${n.id}`).toEqual(expected);
    const ref = sim.logOf(leader.id);
    for (const id of sim.ids) expect(sim.logOf(id)).toEqual(ref);
    expect(raftOf(leader.replica)!.log.lastIndex).toBe(leader.replica.status.commitIndex);
  });
});

describe('duplicated transition ids', () => {
  it('the same id submitted twice (in one batch and across ticks) makes two entries, both applied everywhere', async () => {
    const sim = new ScenarioSimulation({ size: 3, seed: 61 });
    const leader = await sim.stableLeader(1_500);
    leader.sm.submit({ id: 'dup' }, { id: 'dup' });
    await sim.step();
    leader.sm.submit({ id: 'once' });
    await sim.step();
    leader.sm.submit({ id: 'dup' });
    await sim.runUntil(() => sim.live().every((n) => n.sm.appliedIds.length === 4), 1_000, 'four applications');
    for (const n of sim.nodes.values()) expect(n.sm.appliedIds).toEqual(['dup', 'dup', 'once', 'dup']);
    const statuses = leader.sm.statusesOf('dup');
    for (const s of ['queued', 'committed', 'applied'])
      expect(
        statuses.filter((x) => x === s),
        s,
      ).toHaveLength(3);
    for (const n of sim.nodes.values()) {
      expect(sim.logOf(n.id).filter((e) => e.endsWith(':dup'))).toHaveLength(3);
      if (n.id !== leader.id) expect(n.sm.statusesOf('dup')).toEqual(['applied', 'applied', 'applied']);
    }
  });
});
