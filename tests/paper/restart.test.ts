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
    await r.deliver([voteRequest(2, 3, 0, 0)]);
    await r.deliver([appendRequest(2, 3, 0, 0, entries([1, 2, 3]), 0)]);
    const again = await r.restart();
    expect(again.status).toMatchObject({ role: 'follower', term: 3, lastLogIndex: 3, leaderId: undefined });
    expect(again.raft.votedFor).toBe(2);
    expect(again.log()).toEqual(r.log());
  });

  // "Each server will vote for at most one candidate in a given term" — across crashes too.
  it('it does not vote twice in a term after a restart', async () => {
    const r = await PaperReplica.create({ peerIds: [2, 3, 4] });
    await r.deliver([voteRequest(2, 1, 0, 0)]);
    expect(r.take()).toEqual([[2, voteResponse(1, 1, true)]]);
    const again = await r.restart();
    await again.deliver([voteRequest(3, 1, 0, 0)]);
    await again.deliver([voteRequest(2, 1, 0, 0)]);
    expect(again.take()).toEqual([[3, voteResponse(1, 1, false)], [2, voteResponse(1, 1, true)]]);
  });

  // Figure 2, "Volatile state on all servers: commitIndex ... (initialized to 0, increases
  // monotonically); lastApplied ... (initialized to 0, increases monotonically)". "If
  // commitIndex > lastApplied: increment lastApplied, apply log[lastApplied] to state machine".
  it('it re-applies committed entries, once each and in order, only as it learns the commit index', async () => {
    const r = await PaperReplica.create();
    await r.deliver([appendRequest(2, 1, 0, 0, entries([1, 1, 1, 1]), 3)]);
    expect(r.sm.appliedAt.map(([i]) => i)).toEqual([1, 2, 3]);
    const again = await r.restart();
    await again.tick(again.now + 10);
    expect(again.status).toMatchObject({ commitIndex: 0, lastApplied: 0, lastLogIndex: 4 });
    expect(again.sm.appliedAt).toEqual([]);
    await again.deliver([appendRequest(2, 1, 4, 1, [], 2)]);
    expect(again.sm.appliedAt).toEqual([[1, 'e1t1'], [2, 'e2t1']]);
    await again.deliver([appendRequest(2, 1, 4, 1, [], 4), appendRequest(2, 1, 4, 1, [], 4)]);
    expect(again.sm.appliedAt).toEqual([[1, 'e1t1'], [2, 'e2t1'], [3, 'e3t1'], [4, 'e4t1']]);
    expect(again.sm.violations).toEqual([]);
  });

  it('a restarted candidate campaigns in a new term: its old election\'s vote is kept, never reused', async () => {
    const r = await PaperReplica.create();
    await r.campaign();
    const again = await r.restart();
    expect(again.status).toMatchObject({ role: 'follower', term: 1 });
    // In term 1 it already voted for itself.
    await again.deliver([voteRequest(2, 1, 0, 0)]);
    expect(again.take()).toEqual([[2, voteResponse(1, 1, false)]]);
    await again.campaign();
    expect(again.status).toMatchObject({ role: 'candidate', term: 2 });
  });
});
