/**
 * Paper conformance, §7 (log compaction) and Figure 13 (InstallSnapshot RPC). Quotes are from
 * "In Search of an Understandable Consensus Algorithm (Extended Version)".
 */
import { describe, expect, it } from 'vitest';
import { appendRequest, appendResponse } from '../../src/core/message.js';
import { PaperReplica, entries, entry, wholeSnapshot, type D } from '../helpers/paper-harness.js';
import type { Snapshot } from '../../src/index.js';

const snapshot = (lastIncludedIndex: number, lastIncludedTerm: number): Snapshot<D> => ({
  lastIncludedIndex,
  lastIncludedTerm,
  data: { count: lastIncludedIndex, hash: 1000 + lastIncludedIndex },
});

describe('§7 log compaction', () => {
  // "Each server takes snapshots independently, covering just the committed entries in its log."
  // "Once a server completes writing a snapshot, it may delete all log entries up through the
  // last included index". API.md: createSnapshot(i, term) with i = the last applied index.
  it('a replica with snapshotDelta compacts after that many applied entries, at its last applied index and term', async () => {
    const r = await PaperReplica.create({ snapshotDelta: 3, state: { term: 2 } });
    await r.deliver([
      appendRequest({
        from: 2,
        term: 2,
        prevLogIndex: 0,
        prevLogTerm: 0,
        entries: entries([1, 1, 2, 2, 2, 2]),
        leaderCommit: 2,
      }),
    ]);
    expect(r.sm.snapshotCalls).toEqual([]); // 2 applied
    await r.deliver([
      appendRequest({ from: 2, term: 2, prevLogIndex: 6, prevLogTerm: 2, entries: [], leaderCommit: 4 }),
    ]);
    expect(r.sm.snapshotCalls).toEqual([[4, 2]]);
    expect(r.raft.log.snapshotIndex).toBe(4);
    for (let i = 1; i <= 4; i++) expect(r.raft.log.entry(i)).toBeUndefined();
    expect(r.log()).toEqual([
      [5, 2, 'e5t2'],
      [6, 2, 'e6t2'],
    ]);
    await r.tick(); // the snapshot is saved with the next batch
    const saved = await r.storage.state();
    expect(saved.snapshot).toMatchObject({ lastIncludedIndex: 4, lastIncludedTerm: 2 });
    expect(saved.entries.map((e) => e.index)).toEqual([5, 6]);
    // A restart loads it: application resumes after it.
    const again = await r.restart();
    expect(again.sm.setSnapshots.map((s) => s.lastIncludedIndex)).toEqual([4]);
    expect(again.status).toMatchObject({ commitIndex: 4, lastApplied: 4, lastLogIndex: 6 });
  });

  // "the leader must occasionally send snapshots to followers that lag behind. ... The leader uses
  // a new RPC called InstallSnapshot to send snapshots to followers that are too far behind".
  it('a leader sends InstallSnapshot to a follower that needs entries it has compacted', async () => {
    const r = await PaperReplica.create({
      state: { term: 2, snapshot: snapshot(10, 1), entries: [entry(11, 2), entry(12, 2)] },
    });
    await r.elect([3]);
    expect(r.status).toMatchObject({ role: 'leader', term: 3, lastLogIndex: 13 });
    await r.deliver([appendResponse({ from: 2, term: 3, success: false, index: 12, hintIndex: 0, hintTerm: 0 })]); // follower 2's log is empty
    const sent = r.take();
    expect(sent).toEqual([[2, wholeSnapshot(1, 3, snapshot(10, 1))]]);
    await r.deliver([appendResponse({ from: 2, term: 3, success: true, index: 10 })]);
    expect(r.take()).toEqual([
      [
        2,
        appendRequest({
          from: 1,
          term: 3,
          prevLogIndex: 10,
          prevLogTerm: 1,
          entries: [entry(11, 2), entry(12, 2), { ...entry(13, 3, 'noop'), kind: 'noop' }],
          leaderCommit: 10,
        }),
      ],
    ]);
  });

  // Figure 13, InstallSnapshot receiver: "5. Save snapshot file ... 7. Discard the entire log
  // 8. Reset state machine using snapshot contents (and load snapshot's cluster configuration)".
  it("a follower behind the leader's snapshot installs it: setSnapshot, saved, then resumes replication after it", async () => {
    const r = await PaperReplica.create({ state: { term: 1, entries: entries([1, 1]) } });
    await r.deliver([wholeSnapshot(2, 3, snapshot(10, 2))]);
    expect(r.sm.setSnapshots).toEqual([snapshot(10, 2)]);
    expect(r.status).toMatchObject({ term: 3, leaderId: 2, commitIndex: 10, lastApplied: 10, lastLogIndex: 10 });
    expect(r.take()).toEqual([[2, appendResponse({ from: 1, term: 3, success: true, index: 10 })]]);
    // Saved with the configuration now in effect, so that a restart does not fall back on the options.
    expect((await r.storage.state()).snapshot).toEqual({ ...snapshot(10, 2), members: [1, 2, 3] });
    expect((await r.storage.state()).entries).toEqual([]);
    await r.deliver([
      appendRequest({ from: 2, term: 3, prevLogIndex: 10, prevLogTerm: 2, entries: [entry(11, 3)], leaderCommit: 11 }),
    ]);
    expect(r.sm.appliedAt).toEqual([[11, 'e11t3']]);
    expect(r.sm.violations).toEqual([]);
  });

  // §7: "If instead the follower receives a snapshot that describes a prefix of its log (due to
  // retransmission or by mistake), then log entries covered by the snapshot are deleted but
  // entries following the snapshot are still valid and must be retained." Figure 13: "6. If
  // existing log entry has same index and term as snapshot's last included entry, retain log
  // entries following it and reply".
  it("a follower whose log matches the snapshot's last entry keeps the entries after it", async () => {
    const r = await PaperReplica.create({ state: { term: 1, entries: entries([1, 1, 1, 1, 1, 1, 1, 1]) } });
    await r.deliver([wholeSnapshot(2, 1, snapshot(5, 1))]);
    expect(r.log()).toEqual([
      [6, 1, 'e6t1'],
      [7, 1, 'e7t1'],
      [8, 1, 'e8t1'],
    ]);
    expect(r.status).toMatchObject({ commitIndex: 5, lastApplied: 5, lastLogIndex: 8 });
    expect(r.sm.statusesOf('e6t1')).toEqual([]);
  });

  it("a follower whose entry at the snapshot's last index differs discards its whole log", async () => {
    const r = await PaperReplica.create({ state: { term: 1, entries: entries([1, 1, 1, 1, 1, 1, 1, 1]) } });
    await r.deliver([wholeSnapshot(2, 2, snapshot(5, 2))]);
    expect(r.log()).toEqual([]);
    expect(r.status).toMatchObject({ commitIndex: 5, lastApplied: 5, lastLogIndex: 5 });
    expect(r.sm.statusesOf('e6t1')).toEqual(['abandoned:conflict-with-leader']);
  });

  // Figure 2: commitIndex and lastApplied "increase monotonically"; API.md: setSnapshot "is
  // called only with a snapshot newer than what is applied".
  it('an older snapshot never rolls a replica back', async () => {
    const r = await PaperReplica.create();
    await r.deliver([
      appendRequest({
        from: 2,
        term: 1,
        prevLogIndex: 0,
        prevLogTerm: 0,
        entries: entries([1, 1, 1, 1, 1, 1, 1, 1, 1, 1]),
        leaderCommit: 10,
      }),
    ]);
    expect(r.status).toMatchObject({ commitIndex: 10, lastApplied: 10 });
    r.take();
    await r.deliver([wholeSnapshot(2, 1, snapshot(5, 1))]);
    expect(r.status).toMatchObject({ commitIndex: 10, lastApplied: 10, lastLogIndex: 10 });
    expect(r.sm.setSnapshots).toEqual([]);
    expect(r.log()).toHaveLength(10);
    expect(r.take().map(([, m]) => m.type)).toEqual(['appendResponse']);
  });
});
