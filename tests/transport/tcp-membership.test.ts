// TcpCluster.registerMembership: a peer is let go only after it has left the membership and
// gone quiet for retireAfter ms; traffic or a configuration that lists it again brings it back.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { closeAll, mesh, vote, waitFor, type Node } from './fixtures/harness.js';

let open: Node[] = [];
afterEach(async () => {
  await closeAll(open);
  open = [];
});

describe('TcpCluster membership', { timeout: 30_000 }, () => {
  it('lets go of a departed, quiet member; never of one never listed; traffic and re-listing revive', async () => {
    const nodes = await mesh([1, 2, 3], () => ({ retireAfter: 100 }));
    open = nodes;
    const [a, b] = nodes as [Node, Node, Node];
    await waitFor(() => a.cluster.connectedPeers.length === 2, '1 to connect to 2 and 3');
    // The quiet period is timed on a fake clock (Date and setTimeout, which TcpCluster's retirement
    // reads; sockets keep Node's own timers), stepped by hand in a block with no await, so what is
    // kept and what is let go does not depend on the machine's speed.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    try {
      a.cluster.registerMembership([1, 2]); // 3 was never listed: a non-voter catching up
      expect(a.cluster.membership).toEqual([1, 2]);
      a.cluster.registerMembership([1]); // 2 leaves
      // While 1 keeps talking to 2 (a removal not yet committed), 2 is kept: three times retireAfter.
      for (let t = 0; t < 300; t += 20) {
        a.cluster.sendMessage(2, vote(1, 1));
        vi.advanceTimersByTime(20);
        expect(a.cluster.retiredPeers).toEqual([]);
      }
      vi.advanceTimersByTime(75); // quiet, but for less than retireAfter (100)
      expect(a.cluster.retiredPeers).toEqual([]);
      vi.advanceTimersByTime(50); // quiet for retireAfter, and a check (every 25) has run since
      expect(a.cluster.retiredPeers).toEqual([2]);
    } finally {
      vi.useRealTimers();
    }
    await waitFor(() => !a.cluster.connectedPeers.includes(2), 'the connection to 2 to close once let go');
    expect(a.cluster.connectedPeers).toEqual([3]); // never listed: never let go
    expect(a.cluster.peerAddresses.has(2)).toBe(true); // the address book keeps it
    // A message to a peer let go dials it again and is delivered.
    const before = b.received.length;
    a.cluster.sendMessage(2, vote(1, 7));
    await waitFor(
      () => b.received.length > before && b.received.at(-1)!.term === 7,
      'the message to 2 after reviving it',
    );
    expect(a.cluster.retiredPeers).toEqual([]);
    await waitFor(() => a.cluster.retiredPeers.includes(2), '2 to be let go again once quiet');
    // A configuration listing it again (a truncated removal) reconnects it for good.
    a.cluster.registerMembership([1, 2]);
    await waitFor(() => a.cluster.connectedPeers.includes(2), '2 to be reconnected');
    expect(a.cluster.retiredPeers).toEqual([]);
  });
});
