/**
 * Paper conformance, §5.4 (safety): the election restriction and committing entries from
 * previous terms, with Figure 8's scenario. Quotes are from "In Search of an Understandable
 * Consensus Algorithm (Extended Version)".
 */
import { describe, expect, it } from 'vitest';
import { appendResponse, voteRequest, voteResponse } from '../../src/core/message.js';
import { PaperReplica, RaftNet, entries, type RaftState } from '../helpers/paper-harness.js';

describe('§5.4.1 election restriction', () => {
  // "Raft determines which of two logs is more up-to-date by comparing the index and term of the
  // last entries in the logs. If the logs have last entries with different terms, then the log
  // with the later term is more up-to-date. If the logs end with the same term, then whichever
  // log is longer is more up-to-date." "The RequestVote RPC implements this restriction: ... the
  // voter denies its vote if its own log is more up-to-date than that of the candidate."
  // The voter's log: [1, 1, 2] (last index 3, last term 2).
  it.each([
    ['a lower last term, even with a longer log', 10, 1, false],
    ['an equal last term but a shorter log', 2, 2, false],
    ['an equal last term and an equal log', 3, 2, true],
    ['an equal last term and a longer log', 4, 2, true],
    ['a higher last term, even with a shorter log', 1, 3, true],
  ] as const)(
    'a voter answers a candidate with %s (last index %i, last term %i): granted %s',
    async (_, lastIndex, lastTerm, granted) => {
      const r = await PaperReplica.create({ state: { term: 3, entries: entries([1, 1, 2]) } });
      await r.deliver([voteRequest({ from: 2, term: 4, lastLogIndex: lastIndex, lastLogTerm: lastTerm })]);
      expect(r.take()).toEqual([[2, voteResponse({ from: 1, term: 4, granted })]]);
      expect((await r.storage.state()).votedFor).toBe(granted ? 2 : undefined);
    },
  );
});

describe('§5.4.2 committing entries from previous terms', () => {
  // "Raft never commits log entries from previous terms by counting replicas. Only log entries
  // from the leader's current term are committed by counting replicas; once an entry from the
  // current term has been committed in this way, then all prior entries are committed indirectly
  // because of the Log Matching Property."
  it('a leader does not commit an entry of an earlier term by counting replicas', async () => {
    const r = await PaperReplica.create({ peerIds: [2, 3], state: { term: 2, entries: entries([1, 2]) } });
    await r.elect();
    expect(r.status).toMatchObject({ role: 'leader', term: 3, lastLogIndex: 3 });
    await r.deliver([appendResponse({ from: 2, term: 3, success: true, index: 2 })]); // index 2 of term 2 is on 2 of 3 replicas
    expect(r.status.commitIndex).toBe(0);
    expect(r.sm.appliedAt).toEqual([]);
  });

  it('it commits them indirectly once an entry of its own term commits', async () => {
    const r = await PaperReplica.create({ peerIds: [2, 3], state: { term: 2, entries: entries([1, 2]) } });
    await r.elect();
    await r.deliver([appendResponse({ from: 2, term: 3, success: true, index: 2 })]);
    await r.deliver([appendResponse({ from: 2, term: 3, success: true, index: 3 })]); // the noop of term 3 is on 2 of 3
    expect(r.status).toMatchObject({ commitIndex: 3, lastApplied: 3 });
    expect(r.sm.appliedAt).toEqual([
      [1, 'e1t1'],
      [2, 'e2t2'],
      [3, 'noop'],
    ]);
    expect(r.sm.statusesOf('e2t2')).toEqual(['committed', 'applied']);
  });
});

describe('Figure 8: a leader cannot determine commitment using log entries from older terms', () => {
  // Five replicas S1..S5, all holding entry 1 of term 1. Every replica's commits are recorded:
  // an index committed with two different entries fails the test.
  const initial = (): Record<number, RaftState> =>
    Object.fromEntries([1, 2, 3, 4, 5].map((id) => [id, { term: 1, entries: entries([1]) }]));
  const elect = (net: RaftNet, id: number): void => {
    for (let attempt = 0; attempt < 5 && !net.raft(id).isLeader(); attempt++) {
      net.timeout(id);
      net.round(); // RequestVote
      net.round(); // the votes
    }
    expect(net.raft(id).isLeader()).toBe(true);
  };

  /** (a)–(c): S1 leads term 2 and gets its entry 2 to S2 only; S5 leads term 3 alone; S1 leads term 4. */
  const toFigure8c = (): RaftNet => {
    const net = new RaftNet([1, 2, 3, 4, 5], initial(), { maxEntriesPerMessage: 1 });
    // (a) S1 is leader in term 2 and replicates its entry at index 2 to S2 only.
    elect(net, 1);
    expect(net.raft(1).term).toBe(2);
    for (const p of [3, 4, 5]) net.cut(1, p);
    net.settleAll();
    expect(net.terms(2)).toEqual([1, 2]);
    // (b) S1 crashes; S5 is elected leader for term 3 with votes from S3, S4 and itself, and
    // accepts a different entry at index 2.
    net.heal();
    net.crash(1);
    elect(net, 5);
    net.crash(5); // before its AppendEntries leave
    expect(net.raft(5)).toMatchObject({ term: 3 });
    expect(net.terms(5)).toEqual([1, 3]);
    expect(net.terms(2)).toEqual([1, 2]);
    expect(net.terms(3)).toEqual([1]);
    // (c) S5 crashes; S1 restarts, is elected leader (in term 4), and replicates its index 2 to S3.
    net.restart(1);
    net.cut(1, 4);
    elect(net, 1);
    expect(net.raft(1).term).toBe(4);
    return net;
  };

  it('S1 does not count index 2 (term 2) committed when it is on a majority, and S5 may overwrite it (d)', () => {
    const net = toFigure8c();
    // One entry per message: S3 gets index 2 before the entry of term 4 (S2 gets that one).
    for (
      let i = 0;
      i < 10 && !(net.raft(3).log.lastIndex === 2 && net.inflight.some((x) => x.from === 3 && x.to === 1));
      i++
    )
      net.round();
    net.round(); // S1 learns that S1, S2 and S3 hold index 2 of term 2
    expect(net.terms(3)).toEqual([1, 2]);
    expect(net.terms(2)).toEqual([1, 2, 4]);
    const s1Commit = net.raft(1).commitIndex;
    // (d) S1 crashes, S5 restarts and is elected (votes from S3, S4 and itself) and overwrites index 2.
    net.crash(1);
    net.heal();
    net.restart(5);
    elect(net, 5);
    net.settleAll();
    net.heartbeat(5);
    net.settleAll();
    for (const id of [2, 3, 4, 5]) expect(net.terms(id)).toEqual([1, 3, net.raft(5).term]);
    expect(net.raft(2).commitIndex).toBe(3);
    // Had S1 counted index 2 committed, this would be a committed entry lost.
    expect(net.violations).toEqual([]);
    expect(s1Commit).toBe(0);
  });

  it('(e) once S1 replicates an entry of its own term to a majority, index 2 is committed and S5 cannot win', () => {
    const net = toFigure8c();
    net.heal();
    net.settleAll();
    expect(net.raft(1).commitIndex).toBe(3);
    net.heartbeat(1);
    net.settleAll();
    net.crash(1);
    net.restart(5);
    for (let attempt = 0; attempt < 5; attempt++) {
      net.timeout(5);
      net.settleAll();
    }
    expect(net.raft(5).isLeader()).toBe(false);
    expect(net.violations).toEqual([]);
    expect(net.committed.get(2)).toBe('2:noop'); // S1's entry of term 2
  });
});
