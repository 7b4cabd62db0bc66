/**
 * Paper conformance, §5.1 (terms) and §5.2 (leader election), after etcd's raft_paper_test.go.
 * Quotes are from "In Search of an Understandable Consensus Algorithm (Extended Version)",
 * Ongaro and Ousterhout, 2014, and its Figure 2.
 */
import { describe, expect, it } from 'vitest';
import { appendRequest, appendResponse, voteRequest, voteResponse } from '../../src/core/message.js';
import { PaperReplica, ack, drainMicrotasks, entries } from '../helpers/paper-harness.js';

describe('§5.1 terms', () => {
  // "Current terms are exchanged whenever servers communicate; if one server's current term is
  // smaller than the other's, then it updates its current term to the larger value. If a
  // candidate or leader discovers that its term is out of date, it immediately reverts to
  // follower state." Figure 2, all servers: "If RPC request or response contains term
  // T > currentTerm: set currentTerm = T, convert to follower".
  it('a follower that sees a higher term adopts it (and persists it) and stays follower', async () => {
    const r = await PaperReplica.create();
    await r.deliver([
      appendRequest({ from: 2, term: 5, prevLogIndex: 0, prevLogTerm: 0, entries: [], leaderCommit: 0 }),
    ]);
    expect(r.status).toMatchObject({ role: 'follower', term: 5, leaderId: 2 });
    expect((await r.storage.state()).term).toBe(5);
  });

  it('a candidate that sees a higher term adopts it and becomes follower', async () => {
    const r = await PaperReplica.create();
    await r.campaign();
    expect(r.status).toMatchObject({ role: 'candidate', term: 1 });
    await r.deliver([voteResponse({ from: 2, term: 4, granted: false })]);
    expect(r.status).toMatchObject({ role: 'follower', term: 4 });
    expect(await r.storage.state()).toMatchObject({ term: 4, votedFor: undefined });
  });

  it('a leader that sees a higher term adopts it and becomes follower', async () => {
    const r = await PaperReplica.create();
    await r.elect();
    expect(r.status).toMatchObject({ role: 'leader', term: 1 });
    await r.deliver([appendResponse({ from: 2, term: 3, success: false, index: 0 })]);
    expect(r.status).toMatchObject({ role: 'follower', term: 3, leaderId: undefined });
    expect(r.cluster.leaders.at(-1)).toBeUndefined();
    // A deposed leader sends no more heartbeats.
    r.take();
    await r.tick(r.now + 100);
    expect(r.take().filter(([, m]) => m.type === 'append')).toEqual([]);
  });

  // "If a server receives a request with a stale term number, it rejects the request."
  // Figure 2: "Reply false if term < currentTerm" (AppendEntries and RequestVote).
  it('an AppendEntries with a stale term is rejected, and the reply carries the current term', async () => {
    const r = await PaperReplica.create({ state: { term: 5, entries: entries([1, 1]) } });
    await r.deliver([
      appendRequest({
        from: 2,
        term: 3,
        prevLogIndex: 2,
        prevLogTerm: 1,
        entries: [{ index: 3, term: 3, kind: 'transition', transition: { id: 'x' } }],
        leaderCommit: 3,
      }),
    ]);
    expect(r.take()).toEqual([[2, expect.objectContaining({ type: 'appendResponse', term: 5, success: false })]]);
    expect(r.status).toMatchObject({ term: 5, lastLogIndex: 2, commitIndex: 0, leaderId: undefined });
  });

  it('a RequestVote with a stale term is rejected, and the reply carries the current term', async () => {
    const r = await PaperReplica.create({ state: { term: 5 } });
    await r.deliver([voteRequest({ from: 2, term: 3, lastLogIndex: 10, lastLogTerm: 3 })]);
    expect(r.take()).toEqual([[2, voteResponse({ from: 1, term: 5, granted: false })]]);
    expect((await r.storage.state()).votedFor).toBeUndefined();
  });

  it('a stale AppendEntries response is ignored by the leader', async () => {
    const r = await PaperReplica.create({ state: { term: 1 } });
    await r.elect();
    expect(r.status).toMatchObject({ role: 'leader', term: 2, lastLogIndex: 1 });
    // Claims index 1 from term 1: counted, it would commit the noop.
    await r.deliver([appendResponse({ from: 2, term: 1, success: true, index: 1 })]);
    expect(r.status).toMatchObject({ role: 'leader', term: 2, commitIndex: 0 });
    await r.deliver([appendResponse({ from: 2, term: 2, success: true, index: 1 })]);
    expect(r.status.commitIndex).toBe(1);
  });
});

describe('§5.2 leader election', () => {
  // "If a follower receives no communication over a period of time called the election timeout,
  // then it assumes there is no viable leader and begins an election to choose a new leader. To
  // begin an election, a follower increments its current term and transitions to candidate
  // state. It then votes for itself and issues RequestVote RPCs in parallel to each of the other
  // servers in the cluster."
  it('a follower with no leader contact for the election timeout becomes candidate, increments its term, votes for itself and asks every peer', async () => {
    const r = await PaperReplica.create({ peerIds: [2, 3, 4, 5], state: { term: 2, entries: entries([1, 2]) } });
    await r.tick(149);
    expect(r.take()).toEqual([]);
    expect(r.status.role).toBe('follower');
    await r.tick(150);
    expect(r.status).toMatchObject({ role: 'candidate', term: 3, leaderId: undefined });
    expect(r.raft.votedFor).toBe(1);
    expect(r.take()).toEqual(
      [2, 3, 4, 5].map((to) => [to, voteRequest({ from: 1, term: 3, lastLogIndex: 2, lastLogTerm: 2 })]),
    );
  });

  // Figure 2, persistent state: "(Updated on stable storage before responding to RPCs)";
  // API.md: "Term, vote and log entries are made durable through storage before any message that
  // depends on them is sent".
  it('a new candidate persists its term and vote before it sends RequestVote', async () => {
    const r = await PaperReplica.create();
    r.storage.hold();
    const ticking = r.tick(150);
    await drainMicrotasks();
    expect(r.storage.pending).toBe(1);
    expect(r.cluster.outbox).toEqual([]);
    r.storage.release();
    await ticking;
    expect(r.trace.indexOf('durable hardState(term=1,vote=1)')).toBeGreaterThanOrEqual(0);
    expect(r.trace.indexOf('durable hardState(term=1,vote=1)')).toBeLessThan(r.trace.indexOf('send vote to 2'));
    expect(r.take()).toHaveLength(2);
  });

  it('a voter persists its vote before it replies granted', async () => {
    const r = await PaperReplica.create();
    r.storage.hold();
    r.cluster.inbox.push(voteRequest({ from: 2, term: 1, lastLogIndex: 0, lastLogTerm: 0 }));
    const ticking = r.tick();
    await drainMicrotasks();
    expect(r.cluster.outbox).toEqual([]);
    r.storage.release();
    await ticking;
    expect(r.trace.slice(0, 3)).toEqual([
      'save hardState(term=1,vote=2)',
      'durable hardState(term=1,vote=2)',
      'send voteResponse to 2',
    ]);
    expect(r.take()).toEqual([[2, voteResponse({ from: 1, term: 1, granted: true })]]);
  });

  // "Raft uses randomized election timeouts ... election timeouts are chosen randomly from a
  // fixed interval (e.g., 150–300ms)". "Each candidate restarts its randomized election timeout
  // at the start of an election".
  it('election timeouts are drawn from electionTimeoutRange with `random`, anew for every election', async () => {
    const draws = [0.5, 0.25, 0.9];
    const r = await PaperReplica.create({ electionTimeoutRange: [100, 300], random: () => draws.shift() ?? 0 });
    await r.tick(199);
    expect(r.status.term).toBe(0);
    await r.tick(200); // 100 + 0.5 × 200
    expect(r.status).toMatchObject({ role: 'candidate', term: 1 });
    await r.tick(349);
    expect(r.status.term).toBe(1);
    await r.tick(350); // 200 + 100 + 0.25 × 200
    expect(r.status).toMatchObject({ role: 'candidate', term: 2 });
    await r.tick(629);
    expect(r.status.term).toBe(2);
    await r.tick(630); // 350 + 100 + 0.9 × 200
    expect(r.status.term).toBe(3);
  });

  // "A candidate wins an election if it receives votes from a majority of the servers in the
  // full cluster for the same term."
  it.each([
    [3, 1, true], // 2 of 3
    [5, 1, false], // 2 of 5
    [5, 2, true], // 3 of 5
    [4, 1, false], // 2 of 4 is no majority
    [4, 2, true], // 3 of 4
  ])(
    'a candidate in a cluster of %i with its own vote and %i granted becomes leader: %s',
    async (size, grants, leads) => {
      const peerIds = Array.from({ length: size - 1 }, (_, i) => i + 2);
      const r = await PaperReplica.create({ peerIds });
      await r.campaign();
      // A refusal and a duplicated grant count for nothing.
      await r.deliver([
        ...peerIds
          .slice(0, grants)
          .flatMap((p) => [
            voteResponse({ from: p, term: 1, granted: true }),
            voteResponse({ from: p, term: 1, granted: true }),
          ]),
        voteResponse({ from: peerIds.at(-1)!, term: 1, granted: false }),
      ]);
      expect(r.status.role).toBe(leads ? 'leader' : 'candidate');
    },
  );

  it('votes count only from the current term', async () => {
    const r = await PaperReplica.create();
    await r.campaign();
    await r.campaign();
    expect(r.status).toMatchObject({ role: 'candidate', term: 2 });
    await r.deliver([
      voteResponse({ from: 2, term: 1, granted: true }),
      voteResponse({ from: 3, term: 1, granted: true }),
    ]);
    expect(r.status).toMatchObject({ role: 'candidate', term: 2 });
    await r.deliver([voteResponse({ from: 3, term: 2, granted: true })]);
    expect(r.status).toMatchObject({ role: 'leader', term: 2 });
  });

  // "Each server will vote for at most one candidate in a given term, on a first-come-first-served
  // basis". Figure 2: "If votedFor is null or candidateId, and candidate's log is at least as
  // up-to-date as receiver's log, grant vote".
  it('one vote per term: a second candidate in the same term is refused, a repeated request from the same candidate is granted again', async () => {
    const r = await PaperReplica.create({ peerIds: [2, 3, 4] });
    await r.deliver([voteRequest({ from: 2, term: 1, lastLogIndex: 0, lastLogTerm: 0 })]);
    await r.deliver([voteRequest({ from: 3, term: 1, lastLogIndex: 0, lastLogTerm: 0 })]);
    await r.deliver([voteRequest({ from: 2, term: 1, lastLogIndex: 0, lastLogTerm: 0 })]);
    expect(r.take()).toEqual([
      [2, voteResponse({ from: 1, term: 1, granted: true })],
      [3, voteResponse({ from: 1, term: 1, granted: false })],
      [2, voteResponse({ from: 1, term: 1, granted: true })],
    ]);
    expect(await r.storage.state()).toMatchObject({ term: 1, votedFor: 2 });
    // A new term frees the vote.
    await r.deliver([voteRequest({ from: 4, term: 2, lastLogIndex: 0, lastLogTerm: 0 })]);
    expect(r.take()).toEqual([[4, voteResponse({ from: 1, term: 2, granted: true })]]);
  });

  it('a candidate does not vote for another candidate of its own term', async () => {
    const r = await PaperReplica.create();
    await r.campaign();
    await r.deliver([voteRequest({ from: 2, term: 1, lastLogIndex: 5, lastLogTerm: 1 })]);
    expect(r.take()).toEqual([[2, voteResponse({ from: 1, term: 1, granted: false })]]);
  });

  // "While waiting for votes, a candidate may receive an AppendEntries RPC from another server
  // claiming to be leader. If the leader's term (included in its RPC) is at least as large as the
  // candidate's current term, then the candidate recognizes the leader as legitimate and returns
  // to follower state."
  it('a candidate that receives AppendEntries from a leader of its own term becomes follower', async () => {
    const r = await PaperReplica.create();
    await r.campaign();
    await r.deliver([
      appendRequest({ from: 2, term: 1, prevLogIndex: 0, prevLogTerm: 0, entries: [], leaderCommit: 0 }),
    ]);
    expect(r.status).toMatchObject({ role: 'follower', term: 1, leaderId: 2 });
    expect(r.take()).toEqual([[2, appendResponse({ from: 1, term: 1, success: true, index: 0 })]]);
  });

  // "The third possible outcome is that a candidate neither wins nor loses the election ... each
  // candidate will time out and start a new election by incrementing its term and initiating
  // another round of RequestVote RPCs." Figure 2: "If election timeout elapses: start new election".
  it('a candidate whose election times out starts a new one in a higher term', async () => {
    const r = await PaperReplica.create();
    await r.campaign();
    await r.tick(r.now + 149);
    expect(r.take()).toEqual([]);
    await r.tick(r.now + 1);
    expect(r.status).toMatchObject({ role: 'candidate', term: 2 });
    expect(await r.storage.state()).toMatchObject({ term: 2, votedFor: 1 });
    expect(r.take()).toEqual([
      [2, voteRequest({ from: 1, term: 2, lastLogIndex: 0, lastLogTerm: 0 })],
      [3, voteRequest({ from: 1, term: 2, lastLogIndex: 0, lastLogTerm: 0 })],
    ]);
  });

  // "Once a candidate wins an election, it becomes leader. It then sends heartbeat messages to
  // all of the other servers to establish its authority and prevent new elections." Figure 2:
  // "send initial empty AppendEntries RPCs (heartbeat) to each server; repeat during idle periods".
  it('the leader sends AppendEntries at once, then one heartbeat per follower every heartbeatTimeout', async () => {
    const r = await PaperReplica.create({ heartbeatTimeout: 50 });
    await r.campaign();
    const start = r.now;
    const sentAt = new Map<number, number[]>([
      [2, []],
      [3, []],
    ]);
    const collect = (): void => {
      for (const [to, m] of r.take()) {
        if (m.type !== 'append') continue;
        sentAt.get(to)!.push(r.now - start);
        r.cluster.inbox.push(ack(to, m));
      }
    };
    await r.deliver([voteResponse({ from: 2, term: 1, granted: true })]);
    expect(r.status.role).toBe('leader');
    collect();
    for (let t = 5; t <= 500; t += 5) {
      await r.tick(start + t);
      collect();
    }
    const beats = [0, 50, 100, 150, 200, 250, 300, 350, 400, 450, 500];
    expect(sentAt.get(2)).toEqual(beats);
    expect(sentAt.get(3)).toEqual(beats);
    expect(r.status.role).toBe('leader');
  });

  // Figure 2, followers: "If election timeout elapses without receiving AppendEntries RPC from
  // current leader or granting vote to candidate: convert to candidate".
  it('AppendEntries from the current leader resets the election timer', async () => {
    const r = await PaperReplica.create();
    await r.deliver(
      [appendRequest({ from: 2, term: 1, prevLogIndex: 0, prevLogTerm: 0, entries: [], leaderCommit: 0 })],
      100,
    );
    await r.tick(249);
    expect(r.status).toMatchObject({ role: 'follower', leaderId: 2 });
    await r.tick(250);
    expect(r.status.role).toBe('candidate');
  });

  it('granting a vote resets the election timer', async () => {
    const r = await PaperReplica.create();
    await r.deliver([voteRequest({ from: 2, term: 1, lastLogIndex: 0, lastLogTerm: 0 })], 100);
    await r.tick(249);
    expect(r.status).toMatchObject({ role: 'follower', term: 1 });
    await r.tick(250);
    expect(r.status).toMatchObject({ role: 'candidate', term: 2 });
  });

  it('refusing a vote does not reset the election timer', async () => {
    const r = await PaperReplica.create({ state: { term: 1, entries: entries([1]) } });
    await r.deliver([voteRequest({ from: 2, term: 2, lastLogIndex: 0, lastLogTerm: 0 })], 100); // its log is behind: refused
    expect(r.take()).toEqual([[2, voteResponse({ from: 1, term: 2, granted: false })]]);
    await r.tick(150);
    expect(r.status).toMatchObject({ role: 'candidate', term: 3 });
  });

  // API.md: "A leader calls registerLeader(its own id); a replica that starts campaigning ...
  // calls registerLeader(undefined) if it knew a leader."
  it('registerLeader is called on every change of the known leader, and only then', async () => {
    const r = await PaperReplica.create();
    await r.deliver(
      [appendRequest({ from: 2, term: 1, prevLogIndex: 0, prevLogTerm: 0, entries: [], leaderCommit: 0 })],
      10,
    );
    await r.deliver(
      [appendRequest({ from: 2, term: 1, prevLogIndex: 0, prevLogTerm: 0, entries: [], leaderCommit: 0 })],
      20,
    );
    expect(r.cluster.leaders).toEqual([2]);
    await r.campaign();
    expect(r.cluster.leaders).toEqual([2, undefined]);
    await r.deliver([voteResponse({ from: 3, term: 2, granted: true })]);
    expect(r.cluster.leaders).toEqual([2, undefined, 1]);
    await r.deliver([
      appendRequest({ from: 3, term: 5, prevLogIndex: 0, prevLogTerm: 0, entries: [], leaderCommit: 0 }),
    ]);
    expect(r.cluster.leaders).toEqual([2, undefined, 1, 3]);
  });
});
