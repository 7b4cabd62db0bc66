/**
 * Beyond the paper: the rules of Ongaro's PhD dissertation ("Consensus: Bridging Theory and
 * Practice", 2014) that tickraft implements on top of the Raft paper — §9.6 pre-vote, §6.2
 * check-quorum, §6.4 read index, §4.1–4.2 single-server membership changes, §3.10 leadership
 * transfer. Single-replica rules use a scripted replica with a fake clock; rules that need a
 * cluster use Simulation (virtual time on a LocalNetwork, invariants checked every step).
 */
import { describe, expect, it } from 'vitest';
import {
  CatchUpTimeoutError,
  InvalidArgumentError,
  MembershipChangeInProgressError,
  NotLeaderError,
  NotVoterError,
  TransferInProgressError,
  TransferTimeoutError,
} from '../../src/index.js';
import {
  appendRequest,
  appendResponse,
  voteRequest,
  voteResponse,
  type AppendRequest,
} from '../../src/core/message.js';
import {
  PaperReplica,
  RaftNet,
  drainMicrotasks,
  entries,
  type Msg,
  type PaperReplicaOptions,
  type T,
} from '../helpers/paper-harness.js';
import { Simulation } from '../helpers/simulation.js';

type Outcome = { state: 'pending' | 'resolved' | 'rejected'; error?: Error };

/** Tracks a promise's outcome without awaiting it. */
function track(p: Promise<void>): Outcome {
  const o: Outcome = { state: 'pending' };
  p.then(
    () => {
      o.state = 'resolved';
    },
    (e: Error) => {
      o.state = 'rejected';
      o.error = e;
    },
  );
  return o;
}

/** The success answer to an AppendEntries, echoing its read round. */
function reply(from: number, m: AppendRequest<T>): Msg {
  return appendResponse({
    from,
    term: m.term,
    success: true,
    index: m.prevLogIndex + m.entries.length,
    hintIndex: 0,
    hintTerm: 0,
    round: m.round,
  });
}

/** A scripted replica 1 (peers 2, 3) elected in term 1 with votes from 2, its noop committed. */
async function scriptedLeader(o: PaperReplicaOptions = {}): Promise<PaperReplica> {
  const r = await PaperReplica.create(o);
  await r.tick(300);
  await r.deliver([voteResponse({ from: 2, term: r.status.term, granted: true })]);
  expect(r.status.role).toBe('leader');
  const appends = r.takeOfType('append');
  await r.deliver(appends.map(([to, m]) => reply(to, m)));
  expect(r.status.commitIndex).toBe(r.status.lastLogIndex);
  r.take();
  return r;
}

/** Has the leader replicate everything to `from`, answering its AppendEntries. */
async function ackAll(r: PaperReplica, from: number): Promise<void> {
  await r.deliver([appendResponse({ from, term: r.status.term, success: true, index: r.status.lastLogIndex })]);
}

const voteRequestsFrom = (sim: Simulation, id: number, since = 0): number =>
  sim.sent.filter((s) => s.from === id && s.at >= since && s.message.type === 'vote').length;

describe('§9.6 pre-vote', () => {
  it('§9.6: a replica that heard from a leader within the minimum election timeout refuses to pre-vote (and grants once it has not)', async () => {
    const r = await PaperReplica.create({ preVote: true });
    await r.deliver(
      [appendRequest({ from: 2, term: 1, prevLogIndex: 0, prevLogTerm: 0, entries: [], leaderCommit: 0 })],
      10,
    );
    r.take();
    await r.deliver([voteRequest({ from: 3, term: 2, lastLogIndex: 0, lastLogTerm: 0, pre: true })], 100); // 90 ms after the leader's message < 150
    expect(r.takeOfType('voteResponse')).toEqual([[3, voteResponse({ from: 1, term: 1, granted: false, pre: true })]]);
    await r.deliver([voteRequest({ from: 3, term: 2, lastLogIndex: 0, lastLogTerm: 0, pre: true })], 165); // 155 ms after: the leader is not heard from
    expect(r.takeOfType('voteResponse')).toEqual([[3, voteResponse({ from: 1, term: 2, granted: true, pre: true })]]);
  });

  it("§9.6: granting a pre-vote changes neither the voter's term nor its vote", async () => {
    const r = await PaperReplica.create({ preVote: true });
    await r.deliver([voteRequest({ from: 2, term: 5, lastLogIndex: 0, lastLogTerm: 0, pre: true })], 10);
    expect(r.takeOfType('voteResponse')).toEqual([[2, voteResponse({ from: 1, term: 5, granted: true, pre: true })]]);
    expect(r.status.term).toBe(0);
    expect(r.raft.votedFor).toBeUndefined();
    expect(await r.storage.state()).toMatchObject({ term: 0, votedFor: undefined });
    // The real vote of term 1 is still free for someone else.
    await r.deliver([voteRequest({ from: 3, term: 1, lastLogIndex: 0, lastLogTerm: 0 })], 20);
    expect(r.takeOfType('voteResponse')).toEqual([[3, voteResponse({ from: 1, term: 1, granted: true })]]);
  });

  it('§9.6: a pre-candidate keeps its term, reports role candidate with no leader, and asks for term+1', async () => {
    const r = await PaperReplica.create({ preVote: true });
    await r.deliver(
      [appendRequest({ from: 2, term: 1, prevLogIndex: 0, prevLogTerm: 0, entries: [], leaderCommit: 0 })],
      0,
    );
    expect(r.cluster.leaders.at(-1)).toBe(2);
    r.take();
    await r.tick(1000);
    expect(r.status).toMatchObject({ role: 'candidate', term: 1, leaderId: undefined });
    expect(r.cluster.leaders.at(-1)).toBeUndefined();
    expect(r.replica.metrics.electionsStarted).toBe(0);
    expect(await r.storage.state()).toMatchObject({ term: 1, votedFor: undefined });
    const asks = r.takeOfType('vote');
    expect(asks.map(([to]) => to).sort()).toEqual([2, 3]);
    for (const [, m] of asks) expect(m).toMatchObject({ term: 2, pre: true, force: false });
  });

  it('§9.6: on a majority of pre-votes the pre-candidate starts a real election (term+1, votes for itself)', async () => {
    const r = await PaperReplica.create({ preVote: true });
    await r.tick(1000);
    r.take();
    await r.deliver([voteResponse({ from: 2, term: 0, granted: false, pre: true })]); // a refusal (from a voter of the same term) changes nothing
    expect(r.status).toMatchObject({ role: 'candidate', term: 0 });
    expect(r.take()).toEqual([]);
    await r.deliver([voteResponse({ from: 3, term: 1, granted: true, pre: true })]);
    expect(r.status).toMatchObject({ role: 'candidate', term: 1 });
    expect(r.raft.votedFor).toBe(1);
    expect(r.replica.metrics.electionsStarted).toBe(1);
    const asks = r.takeOfType('vote');
    expect(asks).toHaveLength(2);
    for (const [, m] of asks) expect(m).toMatchObject({ term: 1, pre: false });
  });

  async function rejoin(preVote: boolean): Promise<{
    before: number;
    after: number;
    leaderBefore: number;
    leaderAfter: number | undefined;
    realVotes: number;
  }> {
    const sim = new Simulation({ size: 5, seed: 7, preVote });
    const leader = await sim.stableLeader();
    const before = leader.replica.status.term;
    const lonely = [...sim.nodes.keys()].find((id) => id !== leader.id)!;
    const t0 = sim.now;
    sim.network.isolate(lonely);
    await sim.run(5 * 300);
    sim.network.heal();
    await sim.run(2000);
    const realVotes = sim.sent.filter((s) => s.at >= t0 && s.message.type === 'vote' && !s.message.pre).length;
    return {
      before,
      after: Math.max(...[...sim.nodes.keys()].map((id) => sim.core(id).term)),
      leaderBefore: leader.id,
      leaderAfter: sim.leader()?.id,
      realVotes,
    };
  }

  it("§9.6: a partitioned replica that rejoins never raises the leader's term, and the leader keeps leading", async () => {
    const r = await rejoin(true);
    expect(r.after).toBe(r.before);
    expect(r.leaderAfter).toBe(r.leaderBefore);
    expect(r.realVotes).toBe(0);
  });

  it('§9.6 (control): without pre-vote the same rejoin does raise the term', async () => {
    const r = await rejoin(false);
    expect(r.after).toBeGreaterThan(r.before);
  });
});

describe('§6.2 check-quorum', () => {
  it('§6.2: a leader keeps leading while a majority answers, and steps down within about one maximum election timeout once it is cut off', async () => {
    const sim = new Simulation({ size: 5, seed: 3 });
    const leader = await sim.stableLeader();
    const term = leader.replica.status.term;
    const others = [...sim.nodes.keys()].filter((id) => id !== leader.id);
    // Two followers unreachable: the leader and two others are still a majority.
    sim.network.partition([
      [leader.id, others[0]!, others[1]!],
      [others[2]!, others[3]!],
    ]);
    const end = sim.now + 2000;
    while (sim.now < end) {
      await sim.step();
      expect(leader.replica.status).toMatchObject({ role: 'leader', term });
    }
    sim.network.heal();
    await sim.stableLeader();
    const l = sim.leader()!;
    const t0 = sim.now;
    sim.network.isolate(l.id);
    await sim.runUntil(() => l.replica.status.role !== 'leader', 2000, 'the isolated leader stepping down');
    expect(sim.now - t0).toBeLessThanOrEqual(2 * 300 + 10); // checks run every max election timeout
    expect(l.replica.status.leaderId).toBeUndefined();
  });

  it('§6.2 (control): with checkQuorum off an isolated leader keeps believing it leads', async () => {
    const sim = new Simulation({ size: 5, seed: 3, checkQuorum: false });
    const leader = await sim.stableLeader();
    sim.network.isolate(leader.id);
    await sim.run(3000);
    expect(leader.replica.status.role).toBe('leader');
  });

  it('§6.2/§4.2.3: a follower that hears from its leader ignores a higher-term vote request, unless it carries force (transfer)', async () => {
    const r = await PaperReplica.create({ checkQuorum: true });
    await r.deliver(
      [appendRequest({ from: 2, term: 1, prevLogIndex: 0, prevLogTerm: 0, entries: [], leaderCommit: 0 })],
      0,
    );
    r.take();
    await r.deliver([voteRequest({ from: 3, term: 5, lastLogIndex: 10, lastLogTerm: 1 })], 50);
    expect(r.status).toMatchObject({ term: 1, leaderId: 2 });
    expect(r.raft.votedFor).toBeUndefined();
    expect(r.takeOfType('voteResponse').filter(([, m]) => m.granted)).toEqual([]);
    await r.deliver([voteRequest({ from: 3, term: 5, lastLogIndex: 10, lastLogTerm: 1, pre: false, force: true })], 60);
    expect(r.status.term).toBe(5);
    expect(r.raft.votedFor).toBe(3);
    expect(r.takeOfType('voteResponse')).toEqual([[3, voteResponse({ from: 1, term: 5, granted: true })]]);
  });
});

describe('§6.4 read index', () => {
  it('§6.4: on a follower readIndex rejects with NotLeaderError carrying the leader it knows', async () => {
    const r = await PaperReplica.create();
    await r.deliver(
      [appendRequest({ from: 2, term: 1, prevLogIndex: 0, prevLogTerm: 0, entries: [], leaderCommit: 0 })],
      0,
    );
    const o = track(r.replica.readIndex());
    await r.tick();
    await drainMicrotasks();
    expect(o.state).toBe('rejected');
    expect(o.error).toBeInstanceOf(NotLeaderError);
    expect((o.error as NotLeaderError).leaderId).toBe(2);
  });

  it('§6.4: a new leader answers reads only after the first commit of its term, even once a majority confirmed it leads', async () => {
    // Entries of term 1, committed by the previous leader, but this leader does not know it yet.
    const r = await PaperReplica.create({ state: { term: 1, entries: entries([1, 1]) } });
    await r.tick(300);
    await r.deliver([voteResponse({ from: 2, term: 2, granted: true })]);
    expect(r.status).toMatchObject({ role: 'leader', term: 2, commitIndex: 0, lastLogIndex: 3 });
    r.take();
    const o = track(r.replica.readIndex());
    await r.tick();
    const beats = r.takeOfType('append');
    expect(beats.length).toBeGreaterThan(0);
    // Followers confirm leadership, but do not hold the noop yet (they answer for index 0 only).
    await r.deliver(
      beats.map(([to, m]) =>
        appendResponse({ from: to, term: 2, success: true, index: 0, hintIndex: 0, hintTerm: 0, round: m.round }),
      ),
    );
    await drainMicrotasks();
    expect(o.state).toBe('pending');
    await r.deliver([
      appendResponse({
        from: 2,
        term: 2,
        success: true,
        index: 3,
        hintIndex: 0,
        hintTerm: 0,
        round: beats[0]![1].round,
      }),
    ]);
    await drainMicrotasks();
    expect(r.status.commitIndex).toBe(3);
    expect(o.state).toBe('resolved');
  });

  it('§6.4: a read resolves only after a heartbeat round answered by a majority (none: never; one follower of 2: yes)', async () => {
    const r = await scriptedLeader();
    const o = track(r.replica.readIndex());
    await r.tick();
    const beats = r.takeOfType('append');
    expect(beats.map(([to]) => to).sort()).toEqual([2, 3]);
    const round = beats[0]![1].round;
    // Answers to an older round confirm nothing.
    await r.deliver([
      appendResponse({ from: 2, term: 1, success: true, index: 1, hintIndex: 0, hintTerm: 0, round: round - 1 }),
      appendResponse({ from: 3, term: 1, success: true, index: 1, hintIndex: 0, hintTerm: 0, round: round - 1 }),
    ]);
    for (let t = 1; t <= 5; t++) await r.tick(r.now + 10);
    await drainMicrotasks();
    expect(o.state).toBe('pending');
    await r.deliver([reply(3, beats.find(([to]) => to === 3)![1])]);
    await drainMicrotasks();
    expect(o.state).toBe('resolved');
  });

  it('§6.4: concurrent reads share one heartbeat round', async () => {
    const r = await scriptedLeader();
    const reads = Array.from({ length: 10 }, () => track(r.replica.readIndex()));
    await r.tick();
    const beats = r.takeOfType('append');
    expect(beats).toHaveLength(2); // one per follower, not one per read
    await r.deliver([reply(2, beats.find(([to]) => to === 2)![1])]);
    await drainMicrotasks();
    expect(reads.map((o) => o.state)).toEqual(Array(10).fill('resolved'));
  });

  it('§6.4: the core settles a read only once the commit index at the call is applied', () => {
    const net = new RaftNet([1, 2, 3], {});
    net.timeout(1);
    net.settleAll();
    net.propose(1, 'a', 'b');
    net.settleAll();
    const raft = net.raft(1);
    expect(raft.isLeader()).toBe(true);
    expect(raft.commitIndex).toBe(3);
    expect(raft.lastApplied).toBe(0); // RaftNet never applies
    let done = false;
    raft.read({
      resolve: () => {
        done = true;
      },
      reject: () => {},
    });
    net.settle(1);
    net.heartbeat(1); // carries the read's round; answered by both followers
    net.settleAll();
    raft.settleReads();
    expect(done).toBe(false);
    raft.lastApplied = 2;
    raft.settleReads();
    expect(done).toBe(false);
    raft.lastApplied = 3;
    raft.settleReads();
    expect(done).toBe(true);
  });

  it('§6.4: in a running cluster a resolved read sees everything committed before the call', async () => {
    const sim = new Simulation({ size: 3, seed: 11 });
    const leader = await sim.stableLeader();
    for (let i = 0; i < 5; i++) {
      leader.sm.submit({ id: `w${i}` });
      await sim.step();
      const index = sim.core(leader.id).log.lastIndex;
      // Half the reads start once w_i is committed, half while it may still be in flight.
      if (i % 2 === 0) await sim.runUntil(() => sim.core(leader.id).commitIndex >= index, 1000, `w${i} committed`);
      const committedAtCall = sim.core(leader.id).commitIndex;
      const p = leader.replica.readIndex();
      p.then(
        () => expect(sim.core(leader.id).lastApplied).toBeGreaterThanOrEqual(committedAtCall),
        () => {},
      );
      expect(await sim.outcome(p, 1000)).toBe('resolved');
      expect(sim.core(leader.id).lastApplied).toBeGreaterThanOrEqual(committedAtCall);
      if (i % 2 === 0) expect(leader.sm.appliedIds).toContain(`w${i}`);
    }
  });

  it('§6.4: a leader that steps down rejects its pending reads with NotLeaderError', async () => {
    const r = await scriptedLeader();
    const o = track(r.replica.readIndex());
    await r.tick();
    await r.deliver([
      appendRequest({ from: 3, term: 5, prevLogIndex: 0, prevLogTerm: 0, entries: [], leaderCommit: 0 }),
    ]);
    await drainMicrotasks();
    expect(r.status).toMatchObject({ role: 'follower', term: 5 });
    expect(o.state).toBe('rejected');
    expect(o.error).toBeInstanceOf(NotLeaderError);
    expect((o.error as NotLeaderError).leaderId).toBe(3);
  });

  it('§6.4: readIndex settles under hand-driven tick(), not before the next tick', async () => {
    const r = await scriptedLeader();
    const o = track(r.replica.readIndex());
    await drainMicrotasks();
    expect(o.state).toBe('pending');
    expect(r.take()).toEqual([]); // handed to the core at the next tick only
    await r.tick();
    const [to, beat] = r.takeOfType('append')[0]!;
    await r.deliver([reply(to, beat)]);
    await drainMicrotasks();
    expect(o.state).toBe('resolved');
  });
});

describe('§4.1–4.2 single-server membership changes', () => {
  it('§4.1: adding a current member and removing a non-member resolve at once, appending nothing', async () => {
    const r = await scriptedLeader();
    const last = r.status.lastLogIndex;
    const a = track(r.replica.addMember(2));
    const b = track(r.replica.removeMember(9));
    await r.tick();
    await drainMicrotasks();
    expect([a.state, b.state]).toEqual(['resolved', 'resolved']);
    expect(r.status.lastLogIndex).toBe(last);
  });

  it('§4.1: a second change while one is in progress rejects', async () => {
    const r = await scriptedLeader();
    const first = track(r.replica.addMember(4));
    await r.tick();
    const second = track(r.replica.removeMember(3));
    await r.tick();
    await drainMicrotasks();
    expect(second.state).toBe('rejected');
    expect(second.error).toBeInstanceOf(MembershipChangeInProgressError);
    expect(second.error?.message).toMatch(/in progress/);
    expect(first.state).toBe('pending');
  });

  // The new member 4 never answers: the change gives up at the deadline, not a tick before.
  it.each([
    ['the catchUpTimeout option', 1000, 1000],
    ['its default, 10 maximum election timeouts', undefined, 3000],
  ])(
    '§4.1: a member that does not catch up within %s is not added (CatchUpTimeoutError)',
    async (_, option, deadline) => {
      const r = await scriptedLeader(option === undefined ? {} : { catchUpTimeout: option });
      const t0 = r.now;
      const o = track(r.replica.addMember(4));
      await r.tick();
      await r.tick(t0 + deadline - 1);
      await drainMicrotasks();
      expect(o.state).toBe('pending');
      await r.tick(t0 + deadline);
      await drainMicrotasks();
      expect(o.state).toBe('rejected');
      expect(o.error).toBeInstanceOf(CatchUpTimeoutError);
      expect(o.error?.message).toMatch(new RegExp(`replica 4 did not catch up within ${deadline} ms`));
      expect(r.raft.membership.voters).toEqual([1, 2, 3]);
    },
  );

  it('§4.1/§6.4/§3.10: on a non-leader readIndex, addMember, removeMember and transferLeadership reject with NotLeaderError', async () => {
    const r = await PaperReplica.create();
    await r.deliver(
      [appendRequest({ from: 3, term: 1, prevLogIndex: 0, prevLogTerm: 0, entries: [], leaderCommit: 0 })],
      0,
    );
    const all = [
      r.replica.readIndex(),
      r.replica.addMember(4),
      r.replica.removeMember(2),
      r.replica.transferLeadership(2),
    ].map(track);
    await r.tick();
    await drainMicrotasks();
    for (const o of all) {
      expect(o.state).toBe('rejected');
      expect(o.error).toBeInstanceOf(NotLeaderError);
      expect((o.error as NotLeaderError).leaderId).toBe(3);
    }
  });

  it('§4.1/§4.2.1: growing 3→4 raises the quorum to 3; the config entry takes an index but is not applied and gets no states; registerMembership follows', async () => {
    const r = await scriptedLeader();
    expect(r.cluster.memberships).toEqual([[1, 2, 3]]); // at start
    // Before: one follower's ack commits.
    r.sm.submit({ id: 'w' });
    await r.tick();
    await ackAll(r, 2);
    expect(r.status.commitIndex).toBe(r.status.lastLogIndex);
    const change = track(r.replica.addMember(4));
    await r.tick();
    const catchUp = r.status.lastLogIndex;
    expect(r.raft.membership.voters).toEqual([1, 2, 3]); // not before it caught up
    await ackAll(r, 4);
    const configIndex = catchUp + 1;
    expect(r.status.lastLogIndex).toBe(configIndex);
    expect(r.raft.log.entry(configIndex)!.config).toEqual([1, 2, 3, 4]);
    expect(r.raft.membership.voters).toEqual([1, 2, 3, 4]); // in effect once appended
    expect(r.cluster.memberships.at(-1)).toEqual([1, 2, 3, 4]);
    r.sm.submit({ id: 'x' });
    await r.tick();
    await ackAll(r, 4); // leader + 4: two of four
    await drainMicrotasks();
    expect(r.status.commitIndex).toBe(catchUp);
    expect(change.state).toBe('pending');
    await ackAll(r, 2); // three of four
    await drainMicrotasks();
    expect(r.status.commitIndex).toBe(configIndex + 1);
    expect(change.state).toBe('resolved');
    expect(r.sm.appliedAt.map(([i]) => i)).not.toContain(configIndex);
    expect(r.sm.appliedAt.at(-1)).toEqual([configIndex + 1, 'x']);
    expect(r.sm.states.has('noop')).toBe(false);
    expect(r.sm.statusesOf('x')).toEqual(['queued', 'committed', 'applied']);
  });

  it('§4.2.1: a joining replica never campaigns before a configuration includes it, catches up as a non-voter, and the change resolves once committed', async () => {
    const sim = new Simulation({ size: 3, seed: 5 });
    const leader = await sim.stableLeader();
    await sim.write(
      [1, 2, 3],
      Array.from({ length: 20 }, (_, i) => `w${i}`),
    );
    const joiner = sim.add(4, [1, 2, 3], true);
    await sim.run(1500);
    expect(voteRequestsFrom(sim, 4)).toBe(0);
    expect(joiner.replica.metrics.electionsStarted).toBe(0);
    expect(joiner.memberships[0]).toEqual([1, 2, 3]);
    const core = sim.core(leader.id);
    let commitBefore = core.commitIndex;
    let checked = false;
    let resolvedAt: number | undefined;
    const p = leader.replica.addMember(4);
    p.then(
      () => {
        resolvedAt = sim.now;
        const configIndex = core.membership.lastIndex;
        expect(core.commitIndex).toBeGreaterThanOrEqual(configIndex);
      },
      () => {},
    );
    await sim.runUntil(
      () => {
        if (!checked && core.membership.voters.includes(4)) {
          checked = true;
          // The configuration was appended only once the non-voter's log reached the commit index.
          const pr = core.role.kind === 'leader' ? core.role.progress.get(4) : undefined;
          expect(pr?.match ?? 0).toBeGreaterThanOrEqual(commitBefore);
          expect(joiner.replica.status.lastLogIndex).toBeGreaterThanOrEqual(commitBefore);
        }
        if (!checked) {
          commitBefore = core.commitIndex;
          expect(sim.core(4).membership.voters).not.toContain(4);
        }
        return resolvedAt !== undefined;
      },
      3000,
      'the change resolving',
    );
    expect(checked).toBe(true);
    expect(voteRequestsFrom(sim, 4)).toBe(0);
    expect(sim.core(4).membership.voters).toEqual([1, 2, 3, 4]);
    expect(joiner.memberships.at(-1)).toEqual([1, 2, 3, 4]);
    // Configuration entries are skipped by application on every replica.
    await sim.write([1, 2, 3, 4], ['after']);
    const cfg = core.membership.lastIndex;
    for (const id of [1, 2, 3, 4]) expect(sim.node(id).sm.appliedIndexes).not.toContain(cfg);
    // Now a voter: with the leader gone the joiner may campaign and the 4 elect a new leader.
    sim.crash(leader.id);
    await sim.stableLeader(
      5000,
      [...sim.nodes.keys()].filter((id) => id !== leader.id),
    );
    expect(sim.leader()!.id).not.toBe(leader.id);
  });

  it('§4.2.3: a removed follower never campaigns again', async () => {
    const sim = new Simulation({ size: 3, seed: 9 });
    const leader = await sim.stableLeader();
    const gone = [1, 2, 3].find((id) => id !== leader.id)!;
    const term = leader.replica.status.term;
    expect(await sim.outcome(leader.replica.removeMember(gone), 2000)).toBe('resolved');
    const t0 = sim.now;
    const elections = sim.node(gone).replica.metrics.electionsStarted;
    await sim.run(3000);
    expect(voteRequestsFrom(sim, gone, t0)).toBe(0);
    expect(sim.node(gone).replica.metrics.electionsStarted).toBe(elections);
    expect(sim.leader()!.id).toBe(leader.id);
    expect(leader.replica.status.term).toBe(term);
    expect(sim.core(leader.id).membership.voters).not.toContain(gone);
    const rest = [1, 2, 3].filter((id) => id !== gone);
    await sim.write(rest, ['after-removal']);
  });

  it('§4.2.3: a follower removed while partitioned (it never learns of it) does not disturb the cluster when it returns', async () => {
    const sim = new Simulation({ size: 3, seed: 31 });
    const leader = await sim.stableLeader();
    const gone = [1, 2, 3].find((id) => id !== leader.id)!;
    const term = leader.replica.status.term;
    sim.network.isolate(gone);
    expect(await sim.outcome(leader.replica.removeMember(gone), 2000)).toBe('resolved');
    expect(sim.core(gone).membership.voters).toContain(gone); // it missed the change
    await sim.run(1000);
    sim.network.heal();
    await sim.run(3000);
    expect(sim.leader()!.id).toBe(leader.id);
    expect(leader.replica.status.term).toBe(term);
    const rest = [1, 2, 3].filter((id) => id !== gone);
    for (const id of rest) expect(sim.core(id).term).toBe(term);
    await sim.write(rest, ['after-return']);
  });

  it('§4.2.2: a leader that removes itself leads until the change commits, then steps down and a new leader emerges among the rest', async () => {
    const sim = new Simulation({ size: 3, seed: 13 });
    const leader = await sim.stableLeader();
    const core = sim.core(leader.id);
    const o = track(leader.replica.removeMember(leader.id));
    let configIndex = 0;
    await sim.runUntil(
      () => {
        if (o.state === 'pending') {
          expect(leader.replica.status.role).toBe('leader');
          if (core.membership.lastIndex > 0) configIndex = core.membership.lastIndex;
          if (configIndex > 0 && core.commitIndex < configIndex)
            expect(core.membership.voters).not.toContain(leader.id);
        }
        return o.state !== 'pending';
      },
      2000,
      'the removal',
    );
    expect(o.state).toBe('resolved');
    expect(configIndex).toBeGreaterThan(0);
    expect(leader.replica.status.role).toBe('follower');
    const rest = [1, 2, 3].filter((id) => id !== leader.id);
    const t0 = sim.now;
    await sim.stableLeader(3000, rest);
    expect(rest).toContain(sim.leader()!.id);
    await sim.run(1000);
    expect(voteRequestsFrom(sim, leader.id, t0)).toBe(0);
  });

  it('§4.1: membership survives a restart from the log', async () => {
    const sim = new Simulation({ size: 3, seed: 17 });
    const leader = await sim.stableLeader();
    sim.add(4, [1, 2, 3], true);
    expect(await sim.outcome(leader.replica.addMember(4), 3000)).toBe('resolved');
    await sim.write([1, 2, 3, 4], ['x']);
    const f = [1, 2, 3].find((id) => id !== leader.id)!;
    for (const id of [f, 4]) {
      sim.crash(id);
      sim.restart(id);
      await sim.step();
      expect(sim.core(id).membership.voters).toEqual([1, 2, 3, 4]);
      expect(sim.node(id).memberships.at(-1)).toEqual([1, 2, 3, 4]);
    }
  });

  it('§4.1/§5.4: membership survives a restart from a snapshot that compacted the configuration entry', async () => {
    const sim = new Simulation({ size: 3, seed: 19, snapshotDelta: 5 });
    const leader = await sim.stableLeader();
    sim.add(4, [1, 2, 3], true);
    expect(await sim.outcome(leader.replica.addMember(4), 3000)).toBe('resolved');
    const configIndex = sim.core(leader.id).membership.lastIndex;
    expect(configIndex).toBeGreaterThan(0);
    await sim.write(
      [1, 2, 3, 4],
      Array.from({ length: 15 }, (_, i) => `s${i}`),
    );
    const f = [1, 2, 3].find((id) => id !== leader.id)!;
    for (const id of [f, 4]) {
      expect(sim.core(id).log.snapshotIndex).toBeGreaterThan(configIndex);
      sim.crash(id);
      sim.restart(id);
      await sim.step();
      const core = sim.core(id);
      expect(core.log.snapshotIndex).toBeGreaterThan(configIndex); // loaded from the snapshot, not the log
      expect(core.membership.voters).toEqual([1, 2, 3, 4]);
      expect(sim.node(id).memberships.at(-1)).toEqual([1, 2, 3, 4]);
    }
    await sim.write([1, 2, 3, 4], ['after-restarts']);
  });
});

describe('§3.10 leadership transfer', () => {
  it('§3.10: during a transfer the leader abandons polled transitions with not-leader', async () => {
    const r = await scriptedLeader();
    const last = r.status.lastLogIndex;
    track(r.replica.transferLeadership(2));
    await r.tick();
    r.sm.submit({ id: 'x' });
    await r.tick();
    expect(r.sm.statusesOf('x')).toEqual(['abandoned:not-leader']);
    expect(r.status.lastLogIndex).toBe(last);
  });

  it('§3.10: the target receives TimeoutNow only once it is up to date, and only once', async () => {
    const r = await scriptedLeader();
    r.sm.submit({ id: 'a' }, { id: 'b' });
    await r.tick();
    r.take();
    track(r.replica.transferLeadership(2));
    await r.tick();
    await r.deliver([appendResponse({ from: 3, term: 1, success: true, index: r.status.lastLogIndex })]);
    await r.deliver([appendResponse({ from: 2, term: 1, success: true, index: r.status.lastLogIndex - 1 })]);
    expect(r.takeOfType('timeoutNow')).toEqual([]);
    await ackAll(r, 2);
    expect(r.takeOfType('timeoutNow')).toEqual([[2, { type: 'timeoutNow', from: 1, term: 1 }]]);
    for (let i = 0; i < 3; i++) await r.tick(r.now + 60);
    expect(r.takeOfType('timeoutNow')).toEqual([]);
  });

  it('§3.10: once a transfer has rejected at its deadline, the target catching up in that same tick gets no TimeoutNow', async () => {
    const r = await scriptedLeader();
    r.sm.submit({ id: 'a' });
    await r.tick();
    r.take();
    const o = track(r.replica.transferLeadership(2));
    await r.tick();
    await r.deliver([appendResponse({ from: 3, term: 1, success: true, index: r.status.lastLogIndex })]); // keeps the majority heard from
    // The deadline (one maximum election timeout, 300 ms) passes in the very tick the target's ack arrives.
    await r.deliver([appendResponse({ from: 2, term: 1, success: true, index: r.status.lastLogIndex })], r.now + 301);
    await drainMicrotasks();
    expect(o.state).toBe('rejected');
    expect(r.takeOfType('timeoutNow')).toEqual([]);
    expect(r.status.role).toBe('leader');
  });

  it('§3.10: a transfer resolves when the target leads, in a higher term', async () => {
    const sim = new Simulation({ size: 3, seed: 23 });
    const leader = await sim.stableLeader();
    const term = leader.replica.status.term;
    const to = [1, 2, 3].find((id) => id !== leader.id)!;
    const t0 = sim.now;
    expect(await sim.outcome(leader.replica.transferLeadership(to), 1000)).toBe('resolved');
    expect(sim.now - t0).toBeLessThan(150); // sooner than any election timeout
    expect(sim.node(to).replica.status).toMatchObject({ role: 'leader' });
    expect(sim.node(to).replica.status.term).toBeGreaterThan(term);
    await sim.write([1, 2, 3], ['after-transfer']);
  });

  it('§3.10: a transfer to a replica that is down rejects after one maximum election timeout, and the leader accepts transitions again', async () => {
    const sim = new Simulation({ size: 3, seed: 29 });
    const leader = await sim.stableLeader();
    const to = [1, 2, 3].find((id) => id !== leader.id)!;
    sim.crash(to);
    const t0 = sim.now;
    const result = await sim.outcome(leader.replica.transferLeadership(to), 1000);
    expect(result).toBeInstanceOf(TransferTimeoutError);
    expect(sim.now - t0).toBeGreaterThanOrEqual(300);
    expect(sim.now - t0).toBeLessThanOrEqual(300 + 20);
    expect(leader.replica.status.role).toBe('leader');
    await sim.write([leader.id], ['after-failed-transfer']);
  });

  it('§3.10: a second transfer while one is under way rejects with TransferInProgressError', async () => {
    const r = await scriptedLeader();
    const first = track(r.replica.transferLeadership(2));
    await r.tick();
    const second = track(r.replica.transferLeadership(3));
    await r.tick();
    await drainMicrotasks();
    expect(second.state).toBe('rejected');
    expect(second.error).toBeInstanceOf(TransferInProgressError);
    expect(first.state).toBe('pending');
  });

  it('§3.10: a transfer to a non-member rejects', async () => {
    const r = await scriptedLeader();
    const o = track(r.replica.transferLeadership(9));
    await r.tick();
    await drainMicrotasks();
    expect(o.state).toBe('rejected');
    expect(o.error).toBeInstanceOf(NotVoterError);
    expect(o.error).toBeInstanceOf(InvalidArgumentError); // as it always was
    expect(o.error?.message).toMatch(/not a voting member/);
    expect(r.takeOfType('timeoutNow')).toEqual([]);
  });
});
