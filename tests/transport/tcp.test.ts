import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { jsonCodec, msgpackCodec } from '../../src/transport/codec.js';
import { TcpCluster } from '../../src/transport/tcp.js';
import {
  append,
  closeAll,
  exchange,
  HOST,
  liveHandles,
  makeNode,
  mesh,
  SECRET,
  vote,
  waitFor,
  type Kv,
  type Node,
} from './fixtures/harness.js';

/** The compiled transport (npm test builds it first); the exit test runs it in a child process. */
const BUILT = join(process.cwd(), 'dist/src/transport/tcp.js');
let open: Node[] = [];
afterEach(async () => {
  await closeAll(open);
  open = [];
});
const track = (nodes: Node[]): Node[] => {
  open.push(...nodes);
  return nodes;
};

describe('TcpCluster', { timeout: 30_000 }, () => {
  it('validates its options with TypeErrors', () => {
    const base = { id: 1, listen: { host: HOST, port: 0 }, secret: SECRET };
    const bad: Record<string, unknown>[] = [
      { id: 1.5 },
      { listen: { host: '', port: 0 } },
      { listen: { host: HOST, port: 70000 } },
      { secret: 'short' },
      { secret: 42 },
      { peers: { 1: { host: HOST, port: 1 } } },
      { peers: { x: { host: HOST, port: 1 } } },
      { peers: { 2: { host: HOST, port: 0 } } },
      { maxFrameBytes: 0 },
      { maxQueuedMessages: -1 },
      { maxQueuedBytes: 0 },
      { reconnect: { minDelay: 100, maxDelay: 10 } },
      { tls: { key: 'k' } },
      { codec: { encode: 1 } },
      { codec: { ...jsonCodec, name: 'é' } },
      { onEvent: 'log' },
    ];
    for (const patch of bad) {
      expect(() => new TcpCluster<Kv>({ ...base, ...patch } as never), JSON.stringify(patch)).toThrow(TypeError);
    }
    const ok = new TcpCluster<Kv>({ ...base, peers: { 2: { host: HOST, port: 9 } } });
    expect(() => ok.addPeer(1, { host: HOST, port: 9 })).toThrow(TypeError);
    expect(() => ok.port).toThrow(/not listening/);
    expect(ok.halt()).toBe(false);
  });

  it('delivers messages all-to-all among three replicas, in order per sender, waking the receiver', async () => {
    const nodes = track(await mesh([1, 2, 3]));
    const perPair = 50;
    for (let term = 1; term <= perPair; term++) {
      for (const a of nodes)
        for (const b of nodes)
          if (a !== b)
            a.cluster.sendMessage(b.cluster.id, term % 2 ? vote(a.cluster.id, term) : append(a.cluster.id, term, 64));
    }
    await waitFor(() => nodes.every((n) => n.received.length === 2 * perPair), 'every message to arrive');
    for (const b of nodes) {
      for (const a of nodes) {
        if (a === b) continue;
        const terms = b.received.filter((m) => m.from === a.cluster.id).map((m) => m.term);
        expect(terms).toEqual(Array.from({ length: perPair }, (_, i) => i + 1));
      }
      const other = b === nodes[0] ? 2 : 1;
      expect(b.received.find((m) => m.from === other && m.term === 2)).toEqual(append(other, 2, 64));
      expect(b.wakeups).toBeGreaterThan(0);
      expect(b.cluster.connectedPeers.sort()).toEqual(
        nodes
          .filter((n) => n !== b)
          .map((n) => n.cluster.id)
          .sort(),
      );
      const s = b.cluster.stats;
      expect(s.framesIn).toBe(2 * perPair);
      expect(s.framesOut).toBe(2 * perPair);
      expect(s).toMatchObject({ badFrames: 0, authFailures: 0, dropped: 0 });
    }
    // One connection per pair: the lower id dialed.
    for (const n of nodes) {
      for (const e of n.events) if (e.type === 'connected') expect(e.outbound).toBe((e.peer ?? 0) > n.cluster.id);
    }
  });

  it('works with the JSON codec, and refuses a peer that uses another codec', async () => {
    const nodes = track(await mesh([1, 2], () => ({ codec: jsonCodec })));
    await exchange(nodes, 1);
    const odd = track([makeNode(3, { codec: msgpackCodec })])[0] as Node;
    await odd.cluster.listen();
    for (const n of nodes) {
      n.cluster.addPeer(3, { host: HOST, port: odd.cluster.port });
      odd.cluster.addPeer(n.cluster.id, { host: HOST, port: n.cluster.port });
      n.cluster.sendMessage(3, vote(n.cluster.id, 7));
      odd.cluster.sendMessage(n.cluster.id, vote(3, 7));
    }
    await waitFor(() => odd.cluster.stats.authFailures >= 2, 'the codec mismatch to be refused');
    expect(odd.events.some((e) => e.type === 'authFailure' && /codec mismatch/.test(e.reason ?? ''))).toBe(true);
    expect(odd.received).toEqual([]);
    expect(nodes.every((n) => !n.received.some((m) => m.from === 3))).toBe(true);
    await exchange(nodes, 2);
  });

  it('encodes a message sent to several peers in one burst once, and again in a later burst', async () => {
    let encodes = 0;
    const counting = { ...msgpackCodec, encode: (m: unknown) => (encodes++, msgpackCodec.encode(m)) };
    const nodes = track(await mesh([1, 2, 3], () => ({ codec: counting })));
    await exchange(nodes, 1);
    const [leader, b, c] = nodes as [Node, Node, Node];
    const [first, second] = [append(1, 2, 8), append(1, 3, 8)];
    encodes = 0;
    // The order a tick sends in: each follower's whole run of appends, then the next follower's.
    for (const to of [2, 3]) for (const m of [first, second]) leader.cluster.sendMessage(to, m);
    expect(encodes).toBe(2);
    await Promise.resolve();
    leader.cluster.sendMessage(2, first);
    expect(encodes).toBe(3);
    await waitFor(() => b.received.length === 5 && c.received.length === 4, 'the appends to arrive');
    expect(b.received.slice(2)).toEqual([first, second, first]);
    expect(c.received.slice(2)).toEqual([first, second]);
  });

  it('records the leader and membership, and halts after close()', async () => {
    const [n] = track([makeNode(1)]) as [Node];
    expect(n.cluster.leaderId).toBeUndefined();
    n.cluster.registerLeader(3);
    expect(n.cluster.leaderId).toBe(3);
    n.cluster.registerLeader(undefined);
    expect(n.cluster.leaderId).toBeUndefined();
    n.cluster.registerMembership([1, 2, 3]);
    expect(n.cluster.membership).toEqual([1, 2, 3]);
    await n.cluster.listen();
    expect(n.cluster.port).toBeGreaterThan(0);
    expect(n.cluster.halt()).toBe(false);
    const closing = n.cluster.close();
    expect(n.cluster.halt()).toBe(true);
    await closing;
    await n.cluster.close(); // idempotent
    await expect(n.cluster.listen()).rejects.toThrow(/after close/);
    n.cluster.sendMessage(2, vote(1, 1)); // never throws
  });

  it('reconnects when a peer restarts on the same port, and messages flow again', async () => {
    const nodes = track(await mesh([1, 2, 3]));
    await exchange(nodes, 1);
    const [n1, n2, n3] = nodes as [Node, Node, Node];
    const port2 = n2.cluster.port;
    await n2.cluster.close();
    // While 2 is down, messages to it queue up.
    n1.cluster.sendMessage(2, vote(1, 5));
    n3.cluster.sendMessage(2, vote(3, 5));
    const again = track([
      makeNode(2, {
        listen: { host: HOST, port: port2 },
        peers: { 1: { host: HOST, port: n1.cluster.port }, 3: { host: HOST, port: n3.cluster.port } },
      }),
    ])[0] as Node;
    await again.cluster.listen();
    await waitFor(
      () =>
        again.received.some((m) => m.from === 1 && m.term === 5) &&
        again.received.some((m) => m.from === 3 && m.term === 5),
      'queued messages to reach the restarted replica',
    );
    await exchange([n1, again, n3], 6);
    await waitFor(
      () => n1.cluster.stats.reconnects >= 1 && n3.cluster.stats.reconnects >= 1,
      'reconnects to be counted',
    );
  });

  it('reconnects when the dialing side restarts', async () => {
    const nodes = track(await mesh([1, 2]));
    await exchange(nodes, 1);
    const [n1, n2] = nodes as [Node, Node];
    const port1 = n1.cluster.port;
    await n1.cluster.close();
    const again = track([
      makeNode(1, { listen: { host: HOST, port: port1 }, peers: { 2: { host: HOST, port: n2.cluster.port } } }),
    ])[0] as Node;
    await again.cluster.listen();
    await exchange([again, n2], 2);
    expect(n2.cluster.stats.reconnects).toBe(1);
  });

  it('drops the oldest messages when a peer queue is full', async () => {
    const receiver = track([makeNode(2)])[0] as Node;
    await receiver.cluster.listen();
    const sender = track([
      makeNode(1, { maxQueuedMessages: 5, peers: { 2: { host: HOST, port: receiver.cluster.port } } }),
    ])[0] as Node;
    receiver.cluster.addPeer(1, { host: HOST, port: 1 }); // never dialed: the lower id dials
    // Not listening yet, so not connected: the queue holds the last 5 of 8.
    for (let term = 1; term <= 8; term++) sender.cluster.sendMessage(2, vote(1, term));
    expect(sender.cluster.stats.dropped).toBe(3);
    expect(
      sender.events.filter((e) => e.type === 'dropped').every((e) => e.type === 'dropped' && e.reason === 'queue-full'),
    ).toBe(true);
    await sender.cluster.listen();
    await waitFor(() => receiver.received.length === 5, 'the queued messages');
    expect(receiver.received.map((m) => m.term)).toEqual([4, 5, 6, 7, 8]);
  });

  it('drops messages to unknown peers and messages over maxFrameBytes, without throwing', async () => {
    const nodes = track(await mesh([1, 2], () => ({ maxFrameBytes: 1024 })));
    const [n1, n2] = nodes as [Node, Node];
    n1.cluster.sendMessage(9, vote(1, 1));
    n1.cluster.sendMessage(2, append(1, 1, 100));
    expect(n1.cluster.stats.dropped).toBe(2);
    expect(n1.events.filter((e) => e.type === 'dropped').map((e) => e.type === 'dropped' && e.reason)).toEqual([
      'unknown-peer',
      'too-large',
    ]);
    await exchange(nodes, 2);
    expect(n2.received.every((m) => m.type === 'voteResponse')).toBe(true);
  });

  it('moves a peer to a new address and forgets removed peers', async () => {
    const nodes = track(await mesh([1, 2, 3]));
    const [n1, n2, n3] = nodes as [Node, Node, Node];
    await exchange(nodes, 1);
    n1.cluster.removePeer(3);
    n3.cluster.removePeer(1);
    expect(n1.cluster.peerAddresses.has(3)).toBe(false);
    await waitFor(
      () => !n1.cluster.connectedPeers.includes(3) && !n3.cluster.connectedPeers.includes(1),
      'the removed pair to disconnect',
    );
    n1.cluster.sendMessage(3, vote(1, 2));
    expect(n1.cluster.stats.dropped).toBe(1);
    // Replica 2 moves: a fresh instance on a new port, announced with addPeer.
    await n2.cluster.close();
    const moved = track([
      makeNode(2, { peers: { 1: { host: HOST, port: n1.cluster.port }, 3: { host: HOST, port: n3.cluster.port } } }),
    ])[0] as Node;
    await moved.cluster.listen();
    n1.cluster.addPeer(2, { host: HOST, port: moved.cluster.port });
    n3.cluster.addPeer(2, { host: HOST, port: moved.cluster.port });
    await exchange([n1, moved], 3);
    await exchange([moved, n3], 3);
  });

  it('close() ends every socket, server and timer', async () => {
    const before = liveHandles();
    const nodes = await mesh([1, 2, 3]);
    await exchange(nodes, 1);
    // A peer that never answers keeps a reconnect timer going.
    nodes[0]?.cluster.addPeer(4, { host: HOST, port: 1 });
    for (let i = 0; i < 100; i++) nodes[0]?.cluster.sendMessage(2, append(1, 1, 8));
    await closeAll(nodes);
    // Sockets are gone when close() resolves; a server's handle finishes closing a turn or two later.
    await waitFor(
      () => {
        const now = liveHandles();
        return Object.keys(now).every((type) => (now[type] ?? 0) <= (before[type] ?? 0));
      },
      `no live handles (before ${JSON.stringify(before)})`,
    );
  });

  // Runs the built package (npm test builds first), in a child that must exit on its own.
  it('a process exits by itself once its clusters are closed', async () => {
    expect(existsSync(BUILT), `${BUILT} is missing: run npm run build`).toBe(true);
    const script = `
      const { TcpCluster } = await import(${JSON.stringify(pathToFileURL(BUILT).href)});
      const make = (id) => new TcpCluster({ id, listen: { host: '127.0.0.1', port: 0 }, secret: ${JSON.stringify(SECRET)}, reconnect: { minDelay: 10, maxDelay: 50 } });
      const [a, b] = [make(1), make(2)];
      await Promise.all([a.listen(), b.listen()]);
      a.addPeer(2, { host: '127.0.0.1', port: b.port });
      b.addPeer(1, { host: '127.0.0.1', port: a.port });
      a.addPeer(3, { host: '127.0.0.1', port: 1 }); // never answers: a reconnect timer runs
      const got = new Promise((resolve) => b.registerWakeup(resolve));
      a.sendMessage(2, { type: 'voteResponse', from: 1, term: 1, granted: true, pre: false });
      await got;
      console.log(JSON.stringify(b.receiveMessages()));
      await Promise.all([a.close(), b.close()]);
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    let code: number | null | undefined;
    void exited.then((c) => (code = c));
    try {
      await waitFor(() => code !== undefined, 'the child process to exit on its own');
    } finally {
      child.kill();
    }
    expect(code).toBe(0);
    expect(JSON.parse(out)).toEqual([vote(1, 1)]);
  });
});
