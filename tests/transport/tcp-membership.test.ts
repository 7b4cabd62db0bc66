// TcpCluster.registerMembership: a peer is let go only after it has left the membership and
// gone quiet for retireAfter ms; traffic or a configuration that lists it again brings it back.
import { afterEach, describe, expect, it } from 'vitest';
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
    a.cluster.registerMembership([1, 2]); // 3 was never listed: a non-voter catching up
    expect(a.cluster.membership).toEqual([1, 2]);
    a.cluster.registerMembership([1]); // 2 leaves
    // While 1 keeps talking to 2 (a removal not yet committed), 2 is kept.
    const until = Date.now() + 300;
    while (Date.now() < until) {
      a.cluster.sendMessage(2, vote(1, 1));
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(a.cluster.retiredPeers).toEqual([]);
    }
    await waitFor(() => a.cluster.retiredPeers.includes(2) && !a.cluster.connectedPeers.includes(2), '2 to be let go once quiet');
    expect(a.cluster.connectedPeers).toEqual([3]); // never listed: never let go
    expect(a.cluster.peerAddresses.has(2)).toBe(true); // the address book keeps it
    // A message to a peer let go dials it again and is delivered.
    const before = b.received.length;
    a.cluster.sendMessage(2, vote(1, 7));
    await waitFor(() => b.received.length > before && b.received.at(-1)!.term === 7, 'the message to 2 after reviving it');
    expect(a.cluster.retiredPeers).toEqual([]);
    await waitFor(() => a.cluster.retiredPeers.includes(2), '2 to be let go again once quiet');
    // A configuration listing it again (a truncated removal) reconnects it for good.
    a.cluster.registerMembership([1, 2]);
    await waitFor(() => a.cluster.connectedPeers.includes(2), '2 to be reconnected');
    expect(a.cluster.retiredPeers).toEqual([]);
  });
});
