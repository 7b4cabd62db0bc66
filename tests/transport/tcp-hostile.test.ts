/** The TCP transport against peers that lie, babble or break off: each is cut off, counted, and harmless. */
import net from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { msgpackCodec } from '../../src/transport/codec.js';
import { encodeFrames, frameHeader } from '../../src/transport/frame.js';
import { SEAL_OVERHEAD } from '../../src/transport/frame-auth.js';
import { computeProof, encodeHello, newNonce } from '../../src/transport/handshake.js';
import {
  closeAll,
  exchange,
  HOST,
  makeNode,
  mesh,
  rawPeer,
  SECRET,
  vote,
  waitFor,
  type Node,
} from './fixtures/harness.js';

/** The id the hand-driven peer claims: below the mesh's, so it is the one that dials. */
const ROGUE = 5;

let nodes: Node[] = [];
let target: Node;
let term = 1;

beforeEach(async () => {
  nodes = await mesh([10, 20, 30]);
  target = nodes[1] as Node;
  for (const n of nodes) n.cluster.addPeer(ROGUE, { host: HOST, port: 1 }); // never dialed: the lower id dials
  await exchange(nodes, term++);
});
afterEach(async () => {
  await closeAll(nodes);
});

/** The mesh still works and nothing came from the rogue. */
async function meshStillWorks(): Promise<void> {
  await exchange(nodes, term++);
  for (const n of nodes) expect(n.received.filter((m) => m.from === ROGUE)).toEqual([]);
}

const authenticated = async (answerPings = true): Promise<Awaited<ReturnType<typeof rawPeer>>> => {
  const peer = await rawPeer({ port: target.cluster.port, id: ROGUE, target: 20, answerPings });
  await waitFor(() => target.cluster.connectedPeers.includes(ROGUE), 'the rogue to authenticate');
  return peer;
};

describe('TcpCluster under hostile peers', { timeout: 30_000 }, () => {
  it('refuses a replica with the wrong secret, in either role, and delivers nothing of it', async () => {
    const framesIn = target.cluster.stats.framesIn;
    for (const id of [1, 99]) {
      const impostor = makeNode(id, { secret: 'not the cluster secret at all' });
      try {
        await impostor.cluster.listen();
        impostor.cluster.addPeer(20, { host: HOST, port: target.cluster.port });
        target.cluster.addPeer(id, { host: HOST, port: impostor.cluster.port });
        impostor.cluster.sendMessage(20, vote(id, 1));
        target.cluster.sendMessage(id, vote(20, 1));
        // The dialer checks the acceptor's proof first, so whichever side dials detects the mismatch.
        const dialer = id < 20 ? impostor : target;
        await waitFor(() => dialer.cluster.stats.authFailures >= 2, `repeated refusals of ${id}`);
        expect(impostor.received).toEqual([]);
        expect(target.received.filter((m) => m.from === id)).toEqual([]);
        expect(target.cluster.connectedPeers).not.toContain(id);
        expect(impostor.cluster.stats).toMatchObject({ framesIn: 0, framesOut: 0 });
        expect(target.cluster.stats.framesIn).toBe(framesIn);
      } finally {
        await impostor.cluster.close();
        target.cluster.removePeer(id);
      }
    }
    await meshStillWorks();
  });

  it('refuses a dialer whose proof is forged, replayed from another connection, or bound to other ids', async () => {
    const forgeries: Array<(secret: Buffer, t: Parameters<typeof computeProof>[2]) => Buffer> = [
      () => newNonce(), // random bytes
      (s, t) => computeProof(s, 'acceptor', t), // the acceptor's own proof reflected back
      (s, t) => computeProof(s, 'dialer', { ...t, acceptorNonce: newNonce() }), // recorded on another connection
      (s, t) => computeProof(s, 'dialer', { ...t, dialer: 10 }), // valid for another replica's id
      (s, t) => computeProof(s, 'dialer', t).subarray(0, 31), // truncated
    ];
    const framesIn = target.cluster.stats.framesIn;
    for (const [i, proof] of forgeries.entries()) {
      const peer = await rawPeer({ port: target.cluster.port, id: ROGUE, target: 20, proof });
      peer.sendFrames(msgpackCodec.encode(vote(ROGUE, 1))); // must never be read
      await peer.closed;
      expect(target.cluster.stats.authFailures, `forgery ${i}`).toBe(i + 1);
    }
    expect(target.cluster.stats.framesIn).toBe(framesIn);
    await meshStillWorks();
  });

  it('refuses unknown replicas, misaddressed or unsigned hellos and dialers that should accept', async () => {
    const cases = [
      {
        id: ROGUE,
        target: 20,
        secret: 'a wrong secret, long enough',
        reason: /hello not signed with the cluster secret/,
      },
      { id: 7, target: 20, reason: /unknown replica 7/ },
      { id: ROGUE, target: 30, reason: /addressed to replica 30/ },
      { id: 30, target: 20, reason: /the lower id dials/ },
    ];
    for (const c of cases) {
      const attempt = rawPeer({ port: target.cluster.port, id: c.id, target: c.target, secret: c.secret });
      await expect(attempt).rejects.toThrow(/closed during the handshake/);
      const e = target.events.at(-1);
      expect(e?.type === 'authFailure' && c.reason.test(e.reason ?? ''), JSON.stringify(e)).toBe(true);
    }
    expect(target.cluster.stats.authFailures).toBe(4);
    await meshStillWorks();
  });

  it('survives garbage and an oversized header before authentication', async () => {
    for (const bytes of [
      Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'),
      frameHeader(0xffff_ffff),
      encodeFrames([Buffer.alloc(80, 7)]),
    ]) {
      const socket = net.connect({ host: HOST, port: target.cluster.port });
      socket.on('error', () => undefined);
      socket.write(bytes);
      await new Promise((resolve) => socket.on('close', resolve));
    }
    expect(target.cluster.stats.authFailures).toBe(3);
    await meshStillWorks();
  });

  it('closes a silent connection after the handshake timeout', async () => {
    await closeAll(nodes);
    nodes = await mesh([10, 20, 30], () => ({ handshakeTimeout: 100 }));
    target = nodes[1] as Node;
    const socket = net.connect({ host: HOST, port: target.cluster.port });
    socket.on('error', () => undefined);
    await new Promise((resolve) => socket.on('close', resolve));
    expect(target.cluster.stats.authFailures).toBe(1);
    expect(target.events.some((e) => e.type === 'authFailure' && /timed out/.test(e.reason ?? ''))).toBe(true);
    await meshStillWorks();
  });

  const badFrames: Array<[string, (peer: Awaited<ReturnType<typeof rawPeer>>) => void, RegExp]> = [
    ['garbage bytes', (p) => p.sendFrames(Buffer.from([0xc1, 0xff, 0x00, 0x13, 0x37])), /undecodable|invalid/],
    [
      'an oversized frame header',
      (p) => p.sendRaw(frameHeader(64 * 1024 * 1024 + SEAL_OVERHEAD + 1)),
      /exceeds the limit/,
    ],
    [
      'a truncated frame',
      (p) => {
        p.sendRaw(Buffer.concat([frameHeader(100), Buffer.alloc(10)]));
        p.socket.end();
      },
      /truncated/,
    ],
    [
      'a valid message with a spoofed sender',
      (p) => p.sendFrames(msgpackCodec.encode(vote(10, 99))),
      /spoofed sender 10/,
    ],
    [
      'a message of the wrong shape',
      (p) => p.sendFrames(msgpackCodec.encode({ type: 'voteResponse', from: ROGUE, term: -1, granted: 'yes' })),
      /invalid message/,
    ],
    [
      'an unknown message type',
      (p) => p.sendFrames(msgpackCodec.encode({ type: 'surprise', from: ROGUE, term: 1 })),
      /invalid message/,
    ],
    // No replica could campaign past it: the whole cluster would be wedged at that term.
    ['a vote with term 2^53 - 1', (p) => p.sendFrames(msgpackCodec.encode(vote(ROGUE, 2 ** 53 - 1))), /invalid/],
  ];
  for (const [what, send, reason] of badFrames) {
    it(`survives ${what} from an authenticated peer`, async () => {
      const peer = await authenticated();
      peer.sendFrames(msgpackCodec.encode(vote(ROGUE, 1))); // a good one first: delivered
      await waitFor(() => target.received.some((m) => m.from === ROGUE), "the rogue's good message");
      target.received.length = 0;
      send(peer);
      peer.sendFrames(msgpackCodec.encode(vote(ROGUE, 2))); // after the bad frame: never read
      await peer.closed;
      await waitFor(() => target.cluster.stats.badFrames === 1, 'the bad frame to be counted');
      const e = target.events.find((ev) => ev.type === 'badFrame');
      expect(e?.type === 'badFrame' && e.peer === ROGUE && reason.test(e.reason ?? ''), JSON.stringify(e)).toBe(true);
      expect(target.cluster.connectedPeers).not.toContain(ROGUE);
      await meshStillWorks();
      expect(target.cluster.stats.authFailures).toBe(0);
    });
  }

  it('a peer that authenticates again replaces its earlier connection once that one is found dead', async () => {
    const first = await authenticated(false); // its process is gone: it answers no ping
    const second = await rawPeer({ port: target.cluster.port, id: ROGUE, target: 20 });
    expect(second.refused).toBeUndefined();
    await first.closed;
    target.cluster.sendMessage(ROGUE, vote(20, 3));
    await waitFor(() => second.frames.length === 1, 'the message on the newer connection');
    expect(msgpackCodec.decode(second.frames[0] as Buffer)).toEqual(vote(20, 3));
    expect(first.frames).toEqual([]);
    second.socket.destroy();
    await meshStillWorks();
  });

  it('refuses a second live connection claiming a connected id, and keeps the first', async () => {
    const first = await authenticated(); // alive: it answers pings
    const second = await rawPeer({ port: target.cluster.port, id: ROGUE, target: 20 });
    expect(second.refused).toMatch(/replica 5 is already connected from .* and answering/);
    await second.closed;
    const e = target.events.find((ev) => ev.type === 'identityConflict');
    expect(e).toMatchObject({ peer: ROGUE, outbound: false });
    expect(target.cluster.stats.identityConflicts).toBe(1);
    expect(first.isClosed()).toBe(false);
    target.cluster.sendMessage(ROGUE, vote(20, 3));
    await waitFor(() => first.frames.length === 1, 'the message on the first connection');
    expect(target.events.filter((ev) => ev.type === 'disconnected' && ev.peer === ROGUE)).toEqual([]);
    first.socket.destroy();
    await meshStillWorks();
  });

  it('ignores a hello that is not this protocol', async () => {
    const socket = net.connect({ host: HOST, port: target.cluster.port });
    socket.on('error', () => undefined);
    const fields = { role: 'dialer', sender: ROGUE, receiver: 20, nonce: newNonce(), codec: 'msgpack' } as const;
    const hello = encodeHello(fields, Buffer.from(SECRET));
    hello[4] = 9; // another version
    socket.write(encodeFrames([hello]));
    await new Promise((resolve) => socket.on('close', resolve));
    expect(target.events.some((e) => e.type === 'authFailure' && /malformed hello/.test(e.reason ?? ''))).toBe(true);
    await meshStillWorks();
  });
});
