/**
 * Paper conformance, §5.5 (follower and candidate crashes) and Figure 2's persistent and
 * volatile state across a restart. Quotes are from "In Search of an Understandable Consensus
 * Algorithm (Extended Version)".
 */
import { describe, expect, it } from 'vitest';
import { appendRequest, voteRequest, voteResponse } from '../../src/core/message.js';
import { PaperReplica, entries } from '../helpers/paper-harness.js';

describe('§5.5 / Figure 2: restarts', () => {
  // Figure 2, "Persistent state on all servers: (Updated on stable storage before responding to
  // RPCs) currentTerm, votedFor, log[]".
  it('a restarted replica keeps its term, vote and log', async () => {
    const r = await PaperReplica.create();
    await r.deliver([voteRequest({ from: 2, term: 3, lastLogIndex: 0, lastLogTerm: 0 })]);
    await r.deliver([
      appendRequest({
        from: 2,
        term: 3,
        prevLogIndex: 0,
        prevLogTerm: 0,
        entries: entries([1, 2, 3]),
        leaderCommit: 0,
      }),
    ]);
    const again = await r.restart();
    expect(again.status).toMatchObject({ role: 'follower', term: 3, lastLogIndex: 3, leaderId: undefined });
    expect(again.raft.votedFor).toBe(2);
    expect(again.log()).toEqual(r.log());
  });

  // "Each server will vote for at most one candidate in a given term" — across crashes too.
  it('it does not vote twice in a term after a restart', async () => {
    const r = await PaperReplica.create({ peerIds: [2, 3, 4] });
    await r.deliver([voteRequest({ from: 2, term: 1, lastLogIndex: 0, lastLogTerm: 0 })]);
    expect(r.take()).toEqual([[2, voteResponse({ from: 1, term: 1, granted: true })]]);
    const again = await r.restart();
    await again.deliver([voteRequest({ from: 3, term: 1, lastLogIndex: 0, lastLogTerm: 0 })]);
    await again.deliver([voteRequest({ from: 2, term: 1, lastLogIndex: 0, lastLogTerm: 0 })]);
    expect(again.take()).toEqual([
      [3, voteResponse({ from: 1, term: 1, granted: false })],
      [2, voteResponse({ from: 1, term: 1, granted: true })],
    ]);
  });

  // Figure 2, "Volatile state on all servers: commitIndex ... (initialized to 0, increases
  // monotonically); lastApplied ... (initialized to 0, increases monotonically)". "If
  // commitIndex > lastApplied: increment lastApplied, apply log[lastApplied] to state machine".
  it('it re-applies committed entries, once each and in order, only as it learns the commit index', async () => {
    const r = await PaperReplica.create();
    await r.deliver([
      appendRequest({
        from: 2,
        term: 1,
        prevLogIndex: 0,
        prevLogTerm: 0,
        entries: entries([1, 1, 1, 1]),
        leaderCommit: 3,
      }),
    ]);
    expect(r.sm.appliedAt.map(([i]) => i)).toEqual([1, 2, 3]);
    const again = await r.restart();
    await again.tick(again.now + 10);
    expect(again.status).toMatchObject({ commitIndex: 0, lastApplied: 0, lastLogIndex: 4 });
    expect(again.sm.appliedAt).toEqual([]);
    await again.deliver([
      appendRequest({ from: 2, term: 1, prevLogIndex: 4, prevLogTerm: 1, entries: [], leaderCommit: 2 }),
    ]);
    expect(again.sm.appliedAt).toEqual([
      [1, 'e1t1'],
      [2, 'e2t1'],
    ]);
    await again.deliver([
      appendRequest({ from: 2, term: 1, prevLogIndex: 4, prevLogTerm: 1, entries: [], leaderCommit: 4 }),
      appendRequest({ from: 2, term: 1, prevLogIndex: 4, prevLogTerm: 1, entries: [], leaderCommit: 4 }),
    ]);
    expect(again.sm.appliedAt).toEqual([
      [1, 'e1t1'],
      [2, 'e2t1'],
      [3, 'e3t1'],
      [4, 'e4t1'],
    ]);
    expect(again.sm.violations).toEqual([]);
  });

  it("a restarted candidate campaigns in a new term: its old election's vote is kept, never reused", async () => {
    const r = await PaperReplica.create();
    await r.campaign();
    const again = await r.restart();
    expect(again.status).toMatchObject({ role: 'follower', term: 1 });
    // In term 1 it already voted for itself.
    await again.deliver([voteRequest({ from: 2, term: 1, lastLogIndex: 0, lastLogTerm: 0 })]);
    expect(again.take()).toEqual([[2, voteResponse({ from: 1, term: 1, granted: false })]]);
    await again.campaign();
    expect(again.status).toMatchObject({ role: 'candidate', term: 2 });
  });
});
