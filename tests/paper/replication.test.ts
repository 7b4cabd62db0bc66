/**
 * Paper conformance, §5.3 (log replication) and Figure 7, after etcd's raft_paper_test.go.
 * Quotes are from "In Search of an Understandable Consensus Algorithm (Extended Version)".
 */
import { describe, expect, it } from 'vitest';
import { appendRequest, appendResponse, voteResponse, type AppendRequest } from '../../src/core/message.js';
import { PaperReplica, RaftNet, drainMicrotasks, entries, entry, run, type T } from '../helpers/paper-harness.js';

const appends = (sent: [number, { type: string }][], to?: number): AppendRequest<T>[] =>
  sent
    .filter(([dest, m]) => m.type === 'append' && (to === undefined || dest === to))
    .map(([, m]) => m as AppendRequest<T>);

describe('§5.3 log replication: the leader', () => {
  // "The leader appends the command to its log as a new entry, then issues AppendEntries RPCs in
  // parallel to each of the other servers to replicate the entry." API.md: the leader appends
  // what getPendingTransitions returns and reports `queued` once it is durable.
  it('appends polled transitions in its term, and reports them queued only after the save resolved', async () => {
    const r = await PaperReplica.create();
    await r.elect();
    await r.deliver([appendResponse({ from: 2, term: 1, success: true, index: 1 })]);
    r.take();
    r.trace.length = 0;
    r.sm.submit({ id: 'a' }, { id: 'b' });
    r.storage.hold();
    const ticking = r.tick();
    await drainMicrotasks();
    expect(r.storage.pending).toBe(1);
    expect(r.sm.statusesOf('a')).toEqual([]);
    expect(r.cluster.outbox).toEqual([]);
    r.storage.release();
    await ticking;
    expect(r.log()).toEqual([
      [1, 1, 'noop'],
      [2, 1, 'a'],
      [3, 1, 'b'],
    ]);
    expect(r.trace.slice(0, 2)).toEqual(['save append=2@1,3@1', 'durable append=2@1,3@1']);
    expect(r.trace.indexOf('state a queued')).toBeGreaterThan(1);
    expect(r.sm.statusesOf('a')).toEqual(['queued']);
    expect(appends(r.take(), 2)).toEqual([
      appendRequest({
        from: 1,
        term: 1,
        prevLogIndex: 1,
        prevLogTerm: 1,
        entries: [entry(2, 1, 'a'), entry(3, 1, 'b')],
        leaderCommit: 1,
      }),
    ]);
  });

  // Figure 2, leaders: "If there exists an N such that N > commitIndex, a majority of
  // matchIndex[i] ≥ N, and log[N].term == currentTerm: set commitIndex = N".
  it('commits an entry of its term once a majority (itself included) holds it', async () => {
    const r = await PaperReplica.create({ peerIds: [2, 3, 4, 5] });
    await r.elect([2, 3]);
    await r.deliver([appendResponse({ from: 2, term: 1, success: true, index: 1 })]);
    expect(r.status.commitIndex).toBe(0); // 2 of 5
    await r.deliver([appendResponse({ from: 3, term: 1, success: true, index: 1 })]);
    expect(r.status).toMatchObject({ commitIndex: 1, lastApplied: 1 }); // 3 of 5
  });

  it('AppendEntries carries at most maxEntriesPerMessage entries', async () => {
    const r = await PaperReplica.create({ maxEntriesPerMessage: 3 });
    await r.elect();
    await r.deliver([
      appendResponse({ from: 2, term: 1, success: true, index: 1 }),
      appendResponse({ from: 3, term: 1, success: true, index: 1 }),
    ]);
    r.take();
    r.sm.submit(...Array.from({ length: 10 }, (_, i) => ({ id: `t${i}` })));
    await r.tick();
    const sent = appends(r.take(), 2);
    expect(sent.map((m) => m.entries.length)).toEqual([3, 3, 3, 1]);
    expect(sent.flatMap((m) => m.entries.map((e) => e.index))).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  });
});

describe('§5.3 log replication: the AppendEntries receiver', () => {
  // Figure 2, AppendEntries receiver: "2. Reply false if log doesn't contain an entry at
  // prevLogIndex whose term matches prevLogTerm".
  it('rejects AppendEntries whose prevLogTerm does not match its entry at prevLogIndex', async () => {
    const r = await PaperReplica.create({ state: { term: 2, entries: entries([1, 1, 2]) } });
    await r.deliver([
      appendRequest({ from: 2, term: 3, prevLogIndex: 3, prevLogTerm: 3, entries: [entry(4, 3)], leaderCommit: 4 }),
    ]);
    expect(r.take()).toEqual([
      [2, expect.objectContaining({ type: 'appendResponse', term: 3, success: false, index: 3 })],
    ]);
    expect(r.log()).toEqual(entries([1, 1, 2]).map((e) => [e.index, e.term, e.transition.id]));
    expect(r.status.commitIndex).toBe(0);
  });

  it('rejects AppendEntries whose prevLogIndex is beyond its log', async () => {
    const r = await PaperReplica.create({ state: { term: 2, entries: entries([1, 1, 2]) } });
    await r.deliver([
      appendRequest({ from: 2, term: 3, prevLogIndex: 5, prevLogTerm: 3, entries: [entry(6, 3)], leaderCommit: 6 }),
    ]);
    expect(r.take()).toEqual([
      [2, expect.objectContaining({ type: 'appendResponse', term: 3, success: false, index: 5 })],
    ]);
    expect(r.status).toMatchObject({ lastLogIndex: 3, commitIndex: 0 });
  });

  // "3. If an existing entry conflicts with a new one (same index but different terms), delete the
  // existing entry and all that follow it. 4. Append any new entries not already in the log".
  it('deletes a conflicting entry and all that follow it, and appends the new ones', async () => {
    const r = await PaperReplica.create({ state: { term: 2, entries: entries([1, 1, 2, 2, 2]) } });
    await r.deliver([
      appendRequest({
        from: 2,
        term: 3,
        prevLogIndex: 2,
        prevLogTerm: 1,
        entries: [entry(3, 3), entry(4, 3)],
        leaderCommit: 0,
      }),
    ]);
    expect(r.log()).toEqual([
      [1, 1, 'e1t1'],
      [2, 1, 'e2t1'],
      [3, 3, 'e3t3'],
      [4, 3, 'e4t3'],
    ]);
    expect(r.take()).toEqual([[2, appendResponse({ from: 1, term: 3, success: true, index: 4 })]]);
    expect(r.storage.batches.at(-1)).toMatchObject({ truncateFrom: 3, append: [entry(3, 3), entry(4, 3)] });
    expect((await r.storage.state()).entries).toEqual([...entries([1, 1]), entry(3, 3), entry(4, 3)]);
  });

  // §5.5: "Raft RPCs are idempotent ... if a follower receives an AppendEntries request that
  // includes log entries already present in its log, it ignores those entries in the new request."
  it('does not re-append entries already present, and a late shorter duplicate truncates nothing', async () => {
    const r = await PaperReplica.create({ state: { term: 1, entries: entries([1, 1, 1]) } });
    const saves = r.storage.batches.length;
    await r.deliver([
      appendRequest({
        from: 2,
        term: 1,
        prevLogIndex: 0,
        prevLogTerm: 0,
        entries: entries([1, 1, 1]),
        leaderCommit: 0,
      }),
    ]);
    expect(r.storage.batches.length).toBe(saves); // nothing new to persist
    await r.deliver([
      appendRequest({ from: 2, term: 1, prevLogIndex: 3, prevLogTerm: 1, entries: [entry(4, 1)], leaderCommit: 0 }),
    ]);
    await r.deliver([
      appendRequest({ from: 2, term: 1, prevLogIndex: 0, prevLogTerm: 0, entries: entries([1, 1]), leaderCommit: 0 }),
      appendRequest({
        from: 2,
        term: 1,
        prevLogIndex: 1,
        prevLogTerm: 1,
        entries: entries([1, 1], 2),
        leaderCommit: 0,
      }),
    ]);
    expect(r.log()).toEqual([1, 2, 3, 4].map((i) => [i, 1, `e${i}t1`]));
    expect(r.raft.metrics.entriesAppended).toBe(1);
    expect(r.take().map(([, m]) => m)).toEqual([
      appendResponse({ from: 1, term: 1, success: true, index: 3 }),
      appendResponse({ from: 1, term: 1, success: true, index: 4 }),
      appendResponse({ from: 1, term: 1, success: true, index: 2 }),
      appendResponse({ from: 1, term: 1, success: true, index: 3 }),
    ]);
  });

  // "5. If leaderCommit > commitIndex, set commitIndex = min(leaderCommit, index of last new entry)".
  it('sets commitIndex to min(leaderCommit, index of last new entry) and applies up to it', async () => {
    const r = await PaperReplica.create();
    await r.deliver([
      appendRequest({ from: 2, term: 1, prevLogIndex: 0, prevLogTerm: 0, entries: entries([1, 1]), leaderCommit: 5 }),
    ]);
    expect(r.status).toMatchObject({ commitIndex: 2, lastApplied: 2 });
    await r.deliver([
      appendRequest({ from: 2, term: 1, prevLogIndex: 2, prevLogTerm: 1, entries: [entry(3, 1)], leaderCommit: 1 }),
    ]);
    expect(r.status).toMatchObject({ commitIndex: 2 }); // never decreases
    expect(r.sm.appliedAt).toEqual([
      [1, 'e1t1'],
      [2, 'e2t1'],
    ]);
  });

  it('does not commit its own entries beyond what the AppendEntries verified', async () => {
    // Its entry 3 came from a deposed leader of term 2; the leader of term 3 holds another entry 3.
    const r = await PaperReplica.create({ state: { term: 2, entries: entries([1, 1, 2]) } });
    await r.deliver([
      appendRequest({ from: 2, term: 3, prevLogIndex: 2, prevLogTerm: 1, entries: [], leaderCommit: 3 }),
    ]);
    expect(r.status).toMatchObject({ commitIndex: 2, lastApplied: 2, lastLogIndex: 3 });
  });
});

describe('§5.3 fast backtracking', () => {
  // "If desired, the protocol can be optimized to reduce the number of rejected AppendEntries
  // RPCs. ... the leader can decrement nextIndex to bypass all of the conflicting entries in that
  // term; one AppendEntries RPC will be required for each term with conflicting entries, rather
  // than one RPC per entry."
  it('repairs a follower divergent by 3 terms of 50 entries each in a handful of round trips', () => {
    const leaderTerms = [...run(1, 10), ...run(5, 50), ...run(6, 50), ...run(7, 50)];
    const followerTerms = [...run(1, 10), ...run(2, 50), ...run(3, 50), ...run(4, 50)];
    const net = new RaftNet([1, 2, 3], {
      1: { term: 7, entries: entries(leaderTerms) },
      2: { term: 4, entries: entries(followerTerms) },
      3: { term: 7, entries: entries(leaderTerms) },
    });
    net.crash(3);
    net.timeout(1);
    net.inflight = [];
    net.step(1, voteResponse({ from: 3, term: 8, granted: true }));
    expect(net.raft(1).isLeader()).toBe(true);
    const rounds = net.settleAll();
    expect(net.entriesOf(2)).toEqual(net.entriesOf(1));
    expect(Math.ceil(rounds / 2)).toBeLessThanOrEqual(4);
  });

  it("repairs a follower whose divergent suffix is longer than the leader's in a handful of round trips", () => {
    const leaderTerms = [...run(1, 10), ...run(5, 5)];
    const followerTerms = [...run(1, 10), ...run(2, 50), ...run(3, 50), ...run(4, 50)];
    const net = new RaftNet([1, 2, 3], {
      1: { term: 5, entries: entries(leaderTerms) },
      2: { term: 4, entries: entries(followerTerms) },
    });
    net.crash(3);
    net.timeout(1);
    net.inflight = [];
    net.step(1, voteResponse({ from: 3, term: 6, granted: true }));
    const rounds = net.settleAll();
    expect(net.entriesOf(2)).toEqual(net.entriesOf(1));
    expect(Math.ceil(rounds / 2)).toBeLessThanOrEqual(4);
  });
});

describe("Figure 7: the leader forces the followers' logs to duplicate its own", () => {
  // "When the leader at the top comes to power, it is possible that any of scenarios (a–f) could
  // occur in follower logs." §5.3: "the leader handles inconsistencies by forcing the followers'
  // logs to duplicate its own. This means that conflicting entries in follower logs will be
  // overwritten with entries from the leader's log."
  const leader = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
  const followers: [string, number[]][] = [
    ['(a) missing entries', [1, 1, 1, 4, 4, 5, 5, 6, 6]],
    ['(b) missing entries', [1, 1, 1, 4]],
    ['(c) extra uncommitted entries', [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6]],
    ['(d) extra uncommitted entries', [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7]],
    ['(e) missing and extra entries', [1, 1, 1, 4, 4, 4, 4]],
    ['(f) missing and extra entries', [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3]],
  ];
  it.each(followers)("follower %s is repaired to the leader's log of term 8", (_, follower) => {
    const net = new RaftNet([1, 2, 3], {
      1: { term: 7, entries: entries(leader) },
      2: { term: Math.max(...follower), entries: entries(follower) },
      3: { term: 7, entries: entries(leader) },
    });
    net.crash(3);
    net.timeout(1);
    expect(net.raft(1).term).toBe(8);
    net.inflight = [];
    net.step(1, voteResponse({ from: 3, term: 8, granted: true })); // the leader at the top comes to power in term 8
    expect(net.terms(1)).toEqual([...leader, 8]);
    const rounds = net.settleAll();
    expect(net.entriesOf(2)).toEqual(net.entriesOf(1));
    expect(Math.ceil(rounds / 2)).toBeLessThanOrEqual(2);
    // The follower's copy of the noop of term 8 commits everything; the next heartbeat tells it.
    expect(net.raft(1).commitIndex).toBe(11);
    net.heartbeat(1);
    net.settleAll();
    expect(net.raft(2).commitIndex).toBe(11);
    expect(net.violations).toEqual([]);
    // Only uncommitted entries were overwritten, and the follower reports each one it removed.
    const removed = follower.map((term, i) => `e${i + 1}t${term}`).filter((id, i) => id !== `e${i + 1}t${leader[i]}`);
    expect(net.reports.get(2)!.map(([id]) => id)).toEqual(removed);
  });
});
