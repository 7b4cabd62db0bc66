import { describe, expect, it } from 'vitest';
import { Simulation } from '../helpers/simulation.js';

describe('smoke', () => {
  it('elects a leader and replicates', async () => {
    const sim = new Simulation({ size: 3, seed: 1 });
    const leader = await sim.stableLeader();
    leader.sm.submit({ id: 'a' }, { id: 'b' });
    await sim.runUntil(() => [...sim.nodes.values()].every((n) => n.sm.appliedIds.length === 2), 2000, 'apply');
    expect(leader.sm.statusesOf('a')).toEqual(['queued', 'committed', 'applied']);
    for (const n of sim.nodes.values()) expect(n.sm.appliedIds).toEqual(['a', 'b']);
    console.log('steps', sim.steps, 'time', sim.now, 'msgs', sim.network.stats);
  });
});
