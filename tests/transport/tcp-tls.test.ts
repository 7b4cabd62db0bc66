/** The TCP transport over mutual TLS: both sides present certificates and verify them against the CA. */
import net from 'node:net';
import tls from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import type { TcpTlsOptions } from '../../src/tcp.js';
import {
  closeAll,
  exchange,
  fixture,
  HOST,
  liveHandles,
  makeNode,
  mesh,
  vote,
  waitFor,
  type Node,
} from './fixtures/harness.js';

const good: TcpTlsOptions = { key: fixture('node.key'), cert: fixture('node.crt'), ca: fixture('ca.crt') };
const rogue: TcpTlsOptions = { key: fixture('rogue.key'), cert: fixture('rogue.crt'), ca: fixture('ca.crt') };

let open: Node[] = [];
afterEach(async () => {
  await closeAll(open);
  open = [];
});

/** Opens a client connection and resolves once the server has ended it. */
function refused(socket: net.Socket): Promise<void> {
  socket.on('error', () => undefined);
  socket.on('secureConnect', () => socket.write(Buffer.from('hello?')));
  return new Promise((resolve) => socket.on('close', () => resolve()));
}

describe('TcpCluster with mutual TLS', { timeout: 30_000 }, () => {
  it('exchanges messages all-to-all', async () => {
    open = await mesh([1, 2, 3], () => ({ tls: good }));
    await exchange(open, 1);
    await exchange(open, 2);
    for (const n of open) expect(n.cluster.stats).toMatchObject({ framesIn: 4, badFrames: 0, authFailures: 0 });
  });

  it('refuses a client without a certificate, with an unknown one, or without TLS', async () => {
    open = await mesh([1, 2], () => ({ tls: good }));
    const server = open[1] as Node;
    const port = server.cluster.port;
    await refused(tls.connect({ host: HOST, port, ca: good.ca as Buffer }));
    await waitFor(() => server.cluster.stats.authFailures === 1, 'the certificate-less client to be counted');
    await refused(tls.connect({ host: HOST, port, ca: good.ca as Buffer, key: rogue.key, cert: rogue.cert }));
    await waitFor(() => server.cluster.stats.authFailures === 2, 'the unknown certificate to be counted');
    await refused(
      net.connect({ host: HOST, port }).on('connect', function (this: net.Socket) {
        this.write(Buffer.alloc(64, 1));
      }),
    );
    await waitFor(() => server.cluster.stats.authFailures === 3, 'the plain TCP client to be counted');
    expect(
      server.events
        .filter((e) => e.type === 'authFailure')
        .every((e) => e.type === 'authFailure' && /^tls:/.test(e.reason ?? '')),
    ).toBe(true);
    await exchange(open, 1);
  });

  it('never talks to a replica whose certificate the CA did not sign, in either role', async () => {
    open = await mesh([10, 20], () => ({ tls: good }));
    const honest = open[1] as Node;
    for (const id of [5, 30]) {
      const failures = honest.cluster.stats.authFailures;
      const impostor = makeNode(id, { tls: rogue });
      open.push(impostor);
      await impostor.cluster.listen();
      impostor.cluster.addPeer(20, { host: HOST, port: honest.cluster.port });
      honest.cluster.addPeer(id, { host: HOST, port: impostor.cluster.port });
      impostor.cluster.sendMessage(20, vote(id, 1));
      honest.cluster.sendMessage(id, vote(20, 1));
      await waitFor(
        () => honest.cluster.stats.authFailures >= failures + 2 && impostor.cluster.stats.authFailures >= 2,
        `repeated refusals of ${id} on both sides`,
      );
      await impostor.cluster.close();
      honest.cluster.removePeer(id);
      expect(impostor.received).toEqual([]);
      expect(honest.received.filter((m) => m.from === id)).toEqual([]);
    }
    await exchange(open.slice(0, 2), 1);
  });

  it('close() leaves no TLS handles behind', async () => {
    const before = liveHandles();
    const nodes = await mesh([1, 2, 3], () => ({ tls: good }));
    await exchange(nodes, 1);
    // A TLS handshake left half-done by a client that never sends anything.
    const idle = net.connect({ host: HOST, port: nodes[0]?.cluster.port ?? 0 });
    idle.on('error', () => undefined);
    await new Promise((resolve) => idle.on('connect', resolve));
    await closeAll(nodes);
    await new Promise((resolve) => idle.on('close', resolve));
    const after = liveHandles();
    expect(
      Object.keys(after).filter((type) => (after[type] ?? 0) > (before[type] ?? 0)),
      `before ${JSON.stringify(before)}, after ${JSON.stringify(after)}`,
    ).toEqual([]);
  });
});
