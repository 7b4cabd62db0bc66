/**
 * Flow control by bytes (beyond the paper; etcd's MaxSizePerMsg and MaxInflightBytes are the
 * model) and Figure 13's chunked InstallSnapshot. Entry sizes are the core's estimate (a string
 * counts its length); the transitions here carry padding of known length so the budgets bite.
 */
import { describe, expect, it } from 'vitest';
import {
  appendRequest,
  appendResponse,
  snapshotRequest,
  snapshotResponse,
  type AppendRequest,
  type SnapshotRequest,
} from '../../src/core/message.js';
import { entrySize, sizeOf } from '../../src/core/log.js';
import { PaperReplica, entries, entry, type Msg, type Sent, type T } from '../helpers/paper-harness.js';
import type { Snapshot } from '../../src/index.js';

/** A transition of about `bytes` estimated bytes (its padding). */
const padded = (id: string, bytes = 1000): T => ({ id, pad: 'x'.repeat(bytes) }) as T;
const appendsTo = (sent: Sent[], to: number): AppendRequest<T>[] =>
  sent.filter(([t, m]) => t === to && m.type === 'append').map(([, m]) => m as AppendRequest<T>);
const chunksTo = (sent: Sent[], to: number): SnapshotRequest[] =>
  sent.filter(([t, m]) => t === to && m.type === 'snapshot').map(([, m]) => m as SnapshotRequest);

/** A leader of term 1 whose followers 2 and 3 both hold its noop (index 1), in replicate state. */
async function leader(options: Parameters<typeof PaperReplica.create>[0] = {}): Promise<PaperReplica> {
  const r = await PaperReplica.create(options);
  await r.elect();
  await r.deliver([
    appendResponse({ from: 2, term: 1, success: true, index: 1 }),
    appendResponse({ from: 3, term: 1, success: true, index: 1 }),
  ]);
  r.take();
  return r;
}

describe('flow control by bytes', () => {
  it('estimates sizes without a codec: a string counts its length', () => {
    const small = sizeOf(entry(1, 1));
    expect(sizeOf({ index: 1, term: 1, kind: 'transition', transition: padded('a', 5000) })).toBeGreaterThan(5000);
    expect(sizeOf({ index: 1, term: 1, kind: 'transition', transition: padded('a', 5000) })).toBeLessThan(
      5000 + small + 100,
    );
    // The log's per-entry estimate walks only the transition, and stays within a few bytes of the whole walk.
    const big = { index: 1, term: 1, kind: 'transition' as const, transition: padded('a', 5000) };
    expect(Math.abs(entrySize(big) - sizeOf(big))).toBeLessThan(10);
    expect(Math.abs(entrySize(entry(1, 1)) - small)).toBeLessThan(10);
  });

  it('an AppendEntries carries at least one entry, then as many as fit in maxBytesPerMessage', async () => {
    const r = await leader({ maxBytesPerMessage: 2500, maxInflightBytes: 1 << 20 });
    r.sm.submit(padded('a'), padded('b'), padded('c'), padded('big', 5000), padded('d'));
    for (let i = 0; i < 4; i++) await r.tick(); // a tick appends about one message's worth
    const sent = appendsTo(r.take(), 2);
    expect(sent.map((m) => m.entries.map((e) => e.transition.id))).toEqual([['a', 'b'], ['c'], ['big'], ['d']]);
  });

  it('a leader appends about maxBytesPerMessage of polled transitions a tick, the rest in the next', async () => {
    const r = await leader({ maxBytesPerMessage: 2500 });
    r.storage.batches.length = 0;
    r.sm.submit(...Array.from({ length: 7 }, (_, i) => padded(`t${i}`)));
    await r.tick();
    expect(r.storage.batches.map((b) => b.append?.length)).toEqual([3]);
    expect(r.sm.statusesOf('t2')).toEqual(['queued']);
    expect(r.sm.statusesOf('t3')).toEqual([]);
    await r.tick();
    await r.tick();
    expect(r.storage.batches.map((b) => b.append?.length)).toEqual([3, 3, 1]);
    expect(r.status.lastLogIndex).toBe(8);
  });

  it('transitions still waiting when the leader steps down are abandoned / not-leader', async () => {
    const r = await leader({ maxBytesPerMessage: 2500 });
    r.sm.submit(...Array.from({ length: 7 }, (_, i) => padded(`t${i}`)));
    await r.tick();
    await r.deliver([
      appendRequest({ from: 2, term: 2, prevLogIndex: 0, prevLogTerm: 0, entries: [], leaderCommit: 0 }),
    ]); // a leader of term 2
    await r.tick();
    expect(r.sm.statusesOf('t6')).toEqual(['abandoned:not-leader']);
    expect(r.status.lastLogIndex).toBeLessThan(8);
  });

  it('in replicate state the window is bounded by maxInflightBytes as well as by messages', async () => {
    const r = await leader({ maxBytesPerMessage: 2500, maxInflightBytes: 5000 });
    r.sm.submit(...Array.from({ length: 10 }, (_, i) => padded(`t${i}`)));
    for (let i = 0; i < 4; i++) await r.tick();
    // The first tick appends three entries (a message of two, about 2,100 bytes, and one of one),
    // the second three more: one message goes while under 5,000 bytes are in flight, then none.
    const sent = appendsTo(r.take(), 2);
    expect(sent.map((m) => m.entries.length)).toEqual([2, 1, 2]);
    await r.deliver([appendResponse({ from: 2, term: 1, success: true, index: sent[0]!.prevLogIndex + 2 })]);
    expect(appendsTo(r.take(), 2).map((m) => m.prevLogIndex)).toEqual([sent[2]!.prevLogIndex + 2]);
  });

  it('a stalled window is asked about with an empty AppendEntries at its end, never sent again', async () => {
    const r = await leader({ maxBytesPerMessage: 2500, heartbeatTimeout: 50 });
    r.sm.submit(...Array.from({ length: 4 }, (_, i) => padded(`t${i}`)));
    for (let i = 0; i < 2; i++) await r.tick();
    const window = appendsTo(r.take(), 2);
    const end = window.at(-1)!.prevLogIndex + window.at(-1)!.entries.length;
    expect(end).toBe(5);
    await r.tick(r.now + 50); // first heartbeat: the window may still be on its way
    expect(appendsTo(r.take(), 2)).toEqual([expect.objectContaining({ prevLogIndex: 1, entries: [] })]);
    await r.tick(r.now + 50); // no progress since: ask whether the follower holds the end of the window
    expect(appendsTo(r.take(), 2)).toEqual([expect.objectContaining({ prevLogIndex: end, entries: [] })]);
    await r.tick(r.now + 50);
    expect(appendsTo(r.take(), 2).flatMap((m) => m.entries)).toEqual([]);
    // It held the window all along (only slow): one answer moves everything on.
    await r.deliver([appendResponse({ from: 2, term: 1, success: true, index: end })]);
    const progress = r.raft.role.kind === 'leader' ? r.raft.role.progress.get(2) : undefined;
    expect(progress).toMatchObject({ state: 'replicate', match: end, next: end + 1 });
  });

  it('a follower that lost part of the window rejects the question and is probed, one message at a time', async () => {
    const r = await leader({ maxBytesPerMessage: 2500, heartbeatTimeout: 50 });
    r.sm.submit(...Array.from({ length: 4 }, (_, i) => padded(`t${i}`)));
    for (let i = 0; i < 2; i++) await r.tick();
    r.take();
    await r.tick(r.now + 50);
    await r.tick(r.now + 50);
    r.take();
    await r.deliver([appendResponse({ from: 2, term: 1, success: false, index: 5, hintIndex: 1, hintTerm: 1 })]); // it holds only index 1
    const probe = appendsTo(r.take(), 2);
    expect(probe.map((m) => [m.prevLogIndex, m.entries.length])).toEqual([[1, 2]]);
    // Unanswered at the next heartbeat: an empty probe, not the entries again.
    await r.tick(r.now + 50);
    expect(appendsTo(r.take(), 2).map((m) => [m.prevLogIndex, m.entries.length])).toEqual([[1, 0]]);
    await r.tick(r.now + 50);
    expect(appendsTo(r.take(), 2).map((m) => [m.prevLogIndex, m.entries.length])).toEqual([[1, 0]]);
  });
});

const bigSnapshot = (
  lastIncludedIndex: number,
  lastIncludedTerm: number,
): Snapshot<{ count: number; hash: number }> => ({
  lastIncludedIndex,
  lastIncludedTerm,
  data: { count: 123456789, hash: 987654321 },
});

/** The chunks of `s`'s JSON text, `size` characters each. */
function chunksOf(from: number, term: number, s: Snapshot<unknown>, size: number): Msg[] {
  const { data, ...meta } = s;
  const text = JSON.stringify(data);
  const out: Msg[] = [];
  for (let at = 0; at < text.length; at += size) {
    out.push(
      snapshotRequest({ from, term, snapshot: meta, offset: at, size: text.length, chunk: text.slice(at, at + size) }),
    );
  }
  return out;
}

describe('Figure 13: InstallSnapshot in chunks', () => {
  const s = bigSnapshot(10, 1);
  const text = JSON.stringify(s.data);
  const state = { term: 2, snapshot: s, entries: [entry(11, 2)] };

  // Figure 13: "Send the entire snapshot in chunks" with "offset: byte offset where chunk is
  // positioned in the snapshot file", "data[]: raw bytes of the snapshot chunk, starting at offset".
  it('the leader sends chunks of maxBytesPerMessage, up to maxInflightBytes ahead of the follower', async () => {
    const r = await PaperReplica.create({ state, maxBytesPerMessage: 8, maxInflightBytes: 16 });
    await r.elect([3]);
    await r.deliver([appendResponse({ from: 2, term: 3, success: false, index: 11, hintIndex: 0, hintTerm: 0 })]); // follower 2 holds nothing
    let sent = chunksTo(r.take(), 2);
    expect(sent.map((m) => [m.offset, m.chunk])).toEqual([
      [0, text.slice(0, 8)],
      [8, text.slice(8, 16)],
    ]);
    expect(sent[0]).toMatchObject({ size: text.length, snapshot: { lastIncludedIndex: 10, lastIncludedTerm: 1 } });
    expect('data' in sent[0]!.snapshot).toBe(false);
    await r.deliver([snapshotResponse({ from: 2, term: 3, index: 10, offset: 8 })]);
    sent = chunksTo(r.take(), 2);
    expect(sent.map((m) => m.offset)).toEqual([16]);
    await r.deliver([
      snapshotResponse({ from: 2, term: 3, index: 10, offset: 16 }),
      snapshotResponse({ from: 2, term: 3, index: 10, offset: 24 }),
    ]);
    sent = chunksTo(r.take(), 2);
    expect(sent.map((m) => m.offset).at(-1)! + sent.at(-1)!.chunk.length).toBe(text.length);
    // "Reply ... once done": the follower's success moves it on to AppendEntries after the snapshot.
    await r.deliver([appendResponse({ from: 2, term: 3, success: true, index: 10 })]);
    // One entry per message under an 8-byte budget, and one message fills a 16-byte window.
    expect(appendsTo(r.take(), 2)).toEqual([
      appendRequest({ from: 1, term: 3, prevLogIndex: 10, prevLogTerm: 1, entries: [entry(11, 2)], leaderCommit: 10 }),
    ]);
  });

  // Figure 13 receiver: "2. Create new snapshot file if first chunk (offset is 0) 3. Write data into
  // snapshot file at given offset 4. Reply and wait for more data chunks if done is false".
  it('a follower accumulates the chunks in order, answers how much it holds, and installs only the whole', async () => {
    const r = await PaperReplica.create({ state: { term: 1, entries: entries([1, 1]) } });
    const [c0, c1, c2, ...rest] = chunksOf(2, 3, s, 8);
    await r.deliver([c0!]);
    expect(r.take()).toEqual([[2, snapshotResponse({ from: 1, term: 3, index: 10, offset: 8 })]]);
    await r.deliver([c2!]); // out of order (c1 lost): ignored, and it says where it stands
    expect(r.take()).toEqual([[2, snapshotResponse({ from: 1, term: 3, index: 10, offset: 8 })]]);
    await r.deliver([c1!, c1!]); // a duplicate changes nothing
    expect(r.take()).toEqual([
      [2, snapshotResponse({ from: 1, term: 3, index: 10, offset: 16 })],
      [2, snapshotResponse({ from: 1, term: 3, index: 10, offset: 16 })],
    ]);
    expect(r.sm.setSnapshots).toEqual([]);
    expect(r.status.commitIndex).toBe(0);
    await r.deliver([c2!, ...rest]);
    expect(r.sm.setSnapshots).toEqual([s]);
    expect(r.status).toMatchObject({ commitIndex: 10, lastApplied: 10, lastLogIndex: 10 });
    expect(r.take().at(-1)).toEqual([2, appendResponse({ from: 1, term: 3, success: true, index: 10 })]);
  });

  it("another leader's chunks start over at offset 0; a chunk of an unknown transfer is answered 0", async () => {
    const r = await PaperReplica.create();
    const old = chunksOf(2, 3, s, 8);
    await r.deliver([old[0]!, old[1]!]);
    r.take();
    const next = chunksOf(3, 4, s, 8);
    await r.deliver([next[1]!]);
    expect(r.take()).toEqual([[3, snapshotResponse({ from: 1, term: 4, index: 10, offset: 0 })]]);
    await r.deliver(next);
    expect(r.sm.setSnapshots).toEqual([s]);
  });

  it('after a dropped stream the leader resumes from what the follower holds, one chunk, then empty ones', async () => {
    const r = await PaperReplica.create({ state, maxBytesPerMessage: 8, maxInflightBytes: 16 });
    await r.elect([3]);
    await r.deliver([appendResponse({ from: 2, term: 3, success: false, index: 11, hintIndex: 0, hintTerm: 0 })]);
    r.take();
    await r.deliver([snapshotResponse({ from: 2, term: 3, index: 10, offset: 8 })]); // then everything in flight is lost
    r.take();
    await r.tick(r.now + 50); // it moved since the last heartbeat
    expect(chunksTo(r.take(), 2)).toEqual([]);
    await r.tick(r.now + 50); // it did not: resend from the follower's offset, one chunk
    expect(chunksTo(r.take(), 2).map((m) => [m.offset, m.chunk.length])).toEqual([[8, 8]]);
    await r.tick(r.now + 50); // still unanswered: only ask
    expect(chunksTo(r.take(), 2).map((m) => [m.offset, m.chunk.length])).toEqual([[8, 0]]);
    await r.deliver([snapshotResponse({ from: 2, term: 3, index: 10, offset: 16 })]); // it answers: the stream goes on from there
    expect(chunksTo(r.take(), 2).map((m) => m.offset)).toEqual([16, 24]);
  });

  it('a chunk whose whole text is not JSON is dropped and counted, never thrown', async () => {
    const r = await PaperReplica.create();
    await r.deliver([
      snapshotRequest({
        from: 2,
        term: 3,
        snapshot: { lastIncludedIndex: 10, lastIncludedTerm: 1 },
        offset: 0,
        size: 5,
        chunk: '{nope',
      }),
    ]);
    expect(r.replica.metrics.messagesDropped).toBe(1);
    expect(r.sm.setSnapshots).toEqual([]);
    expect(r.status.commitIndex).toBe(0);
  });
});
