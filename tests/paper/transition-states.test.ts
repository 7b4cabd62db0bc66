/**
 * Transition states (API.md) against the paper's client interaction (§8) and Figure 2's rules
 * for leaders. Quotes are from "In Search of an Understandable Consensus Algorithm (Extended
 * Version)".
 */
import { describe, expect, it } from 'vitest';
import { appendRequest, appendResponse, voteResponse } from '../../src/core/message.js';
import { PaperReplica, entries, entry } from '../helpers/paper-harness.js';

const noop = (index: number, term: number) => ({ ...entry(index, term, 'noop'), kind: 'noop' as const });

describe('§5.3 / §8 transition states', () => {
  // Figure 2, leaders: "If command received from client: append entry to local log, respond after
  // entry applied to state machine". API.md: queued → committed → applied on the leader.
  it('the leader reports queued, then committed, then applied', async () => {
    const r = await PaperReplica.create();
    await r.elect();
    await r.deliver([appendResponse({ from: 2, term: 1, success: true, index: 1 })]);
    r.sm.submit({ id: 'a' });
    await r.tick();
    expect(r.sm.statusesOf('a')).toEqual(['queued']);
    await r.deliver([appendResponse({ from: 3, term: 1, success: true, index: 2 })]);
    expect(r.sm.statusesOf('a')).toEqual(['queued', 'committed', 'applied']);
    expect(r.sm.appliedAt).toEqual([
      [1, 'noop'],
      [2, 'a'],
    ]);
  });

  it('a follower reports applied only', async () => {
    const r = await PaperReplica.create();
    await r.deliver([
      appendRequest({
        from: 2,
        term: 1,
        prevLogIndex: 0,
        prevLogTerm: 0,
        entries: [noop(1, 1), entry(2, 1, 'a')],
        leaderCommit: 1,
      }),
    ]);
    expect(r.sm.statusesOf('a')).toEqual([]);
    await r.deliver([
      appendRequest({ from: 2, term: 1, prevLogIndex: 2, prevLogTerm: 1, entries: [], leaderCommit: 2 }),
    ]);
    expect(r.sm.statusesOf('a')).toEqual(['applied']);
  });

  // §8: "If the client contacts a follower, the follower rejects its request".
  it('a non-leader reports each polled transition abandoned / not-leader', async () => {
    const r = await PaperReplica.create();
    r.sm.submit({ id: 'f' });
    await r.tick();
    await r.campaign();
    r.sm.submit({ id: 'c' });
    await r.tick();
    expect(r.sm.statusesOf('f')).toEqual(['abandoned:not-leader']);
    expect(r.sm.statusesOf('c')).toEqual(['abandoned:not-leader']);
    expect(r.status.lastLogIndex).toBe(0);
  });

  // §5.3: "conflicting entries in follower logs will be overwritten with entries from the
  // leader's log". API.md: an uncommitted entry removed by a new leader is reported abandoned /
  // conflict-with-leader by the replica that removes it.
  it('a deposed leader reports its uncommitted entry abandoned / conflict-with-leader when the new leader overwrites it', async () => {
    const r = await PaperReplica.create();
    await r.elect();
    await r.deliver([appendResponse({ from: 2, term: 1, success: true, index: 1 })]);
    r.sm.submit({ id: 'x' });
    await r.tick();
    expect(r.status).toMatchObject({ commitIndex: 1, lastLogIndex: 2 });
    await r.deliver([
      appendRequest({ from: 3, term: 2, prevLogIndex: 1, prevLogTerm: 1, entries: [noop(2, 2)], leaderCommit: 2 }),
    ]);
    expect(r.status).toMatchObject({ role: 'follower', term: 2, leaderId: 3 });
    expect(r.sm.statusesOf('x')).toEqual(['queued', 'abandoned:conflict-with-leader']);
    expect(r.sm.appliedIds).toEqual([]);
  });

  it('a follower reports an uncommitted entry it removes abandoned / conflict-with-leader', async () => {
    const r = await PaperReplica.create({ state: { term: 1, entries: entries([1, 1]) } });
    await r.deliver([
      appendRequest({ from: 3, term: 2, prevLogIndex: 1, prevLogTerm: 1, entries: [noop(2, 2)], leaderCommit: 0 }),
    ]);
    expect(r.sm.statusesOf('e2t1')).toEqual(['abandoned:conflict-with-leader']);
    expect(r.sm.statusesOf('e1t1')).toEqual([]);
  });

  // §8: "Raft handles this by having each leader commit a blank no-op entry into the log at the
  // start of its term." API.md: the noop is the first entry of every new leader's term, before
  // any polled transition, and no states are reported for it.
  it("the noop is the first entry of each new leader's term, before transitions polled in the same tick", async () => {
    const r = await PaperReplica.create({ state: { term: 1, entries: entries([1]) } });
    await r.campaign();
    r.sm.submit({ id: 'b' });
    await r.deliver([voteResponse({ from: 2, term: 2, granted: true })]);
    expect(r.log()).toEqual([
      [1, 1, 'e1t1'],
      [2, 2, 'noop'],
      [3, 2, 'b'],
    ]);
    expect(r.raft.log.entry(2)!.kind).toBe('noop');
    // Deposed, then elected again in term 4: a noop again opens the term.
    await r.deliver([appendResponse({ from: 2, term: 3, success: false, index: 0 })]);
    await r.elect();
    expect(r.status).toMatchObject({ role: 'leader', term: 4 });
    expect(r.log().at(-1)).toEqual([4, 4, 'noop']);
  });

  it('no state is ever reported for the noop, though it is applied', async () => {
    const r = await PaperReplica.create();
    await r.elect();
    await r.deliver([appendResponse({ from: 2, term: 1, success: true, index: 1 })]);
    expect(r.sm.appliedAt).toEqual([[1, 'noop']]);
    expect(r.sm.states.has('noop')).toBe(false);
    expect(r.sm.violations).toEqual([]);
    const f = await PaperReplica.create({ id: 2 });
    await f.deliver([
      appendRequest({ from: 1, term: 1, prevLogIndex: 0, prevLogTerm: 0, entries: [noop(1, 1)], leaderCommit: 1 }),
    ]);
    await f.deliver([
      appendRequest({ from: 3, term: 2, prevLogIndex: 0, prevLogTerm: 0, entries: [noop(1, 2)], leaderCommit: 0 }),
    ]); // a noop removed by a conflict
    expect(f.sm.states.has('noop')).toBe(false);
  });
});
