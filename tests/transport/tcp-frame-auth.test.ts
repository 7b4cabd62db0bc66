/**
 * Frames are authenticated one by one, not just the connection: a proxy on the path (no TLS)
 * that injects, forges, replays, reorders or drops a frame after an honest handshake gets the
 * connection closed and counted, and nothing it touched reaches the replica.
 */
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { msgpackCodec } from '../../src/transport/codec.js';
import { encodeFrames, FrameDecoder } from '../../src/transport/frame.js';
import { append, closeAll, HOST, makeNode, vote, waitFor, type Node } from './fixtures/harness.js';

/** Forwards a dialer's connection to `target` frame by frame; can tamper with the dialer's frames. */
class Proxy {
  readonly server = net.createServer((down) => this.onConnection(down));
  /** Frames from the dialer after its handshake (hello, proof), header included, as forwarded. */
  readonly recorded: Buffer[] = [];
  /** Connections the proxy has carried. */
  connections = 0;
  /** Tamper with the dialer's next message frame: drop it, or hold it and send it after the one after. */
  tamper: 'drop' | 'swap' | undefined;
  private up: net.Socket | undefined;
  private held: Buffer | undefined;

  constructor(private readonly target: number) {}

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, HOST, resolve));
    return (this.server.address() as net.AddressInfo).port;
  }

  /** Writes `bytes` to the acceptor as if the dialer had sent them. */
  inject(bytes: Uint8Array): void {
    this.up?.write(bytes);
  }

  close(): Promise<void> {
    this.server.close();
    return new Promise((resolve) => this.server.once('close', resolve));
  }

  private onConnection(down: net.Socket): void {
    this.connections++;
    const up = net.connect({ host: HOST, port: this.target });
    this.up = up;
    this.recorded.length = 0;
    const decoder = new FrameDecoder(1 << 30);
    let seen = 0;
    for (const s of [up, down]) s.on('error', () => undefined);
    up.on('data', (chunk: Buffer) => down.write(chunk));
    up.on('close', () => down.destroy());
    down.on('close', () => up.destroy());
    down.on('data', (chunk: Buffer) => {
      decoder.push(chunk);
      for (let f = decoder.next(); f !== undefined; f = decoder.next()) {
        const frame = encodeFrames([f]);
        if (seen++ < 2) {
          up.write(frame); // the handshake: passed on untouched
          continue;
        }
        this.recorded.push(frame);
        if (this.tamper === 'drop') {
          this.tamper = undefined;
        } else if (this.tamper === 'swap') {
          this.tamper = undefined;
          this.held = frame;
        } else {
          up.write(frame);
          if (this.held !== undefined) up.write(this.held);
          this.held = undefined;
        }
      }
    });
  }
}

let dialer: Node;
let acceptor: Node;
let proxy: Proxy;
let term = 1;

beforeEach(async () => {
  dialer = makeNode(10);
  acceptor = makeNode(20);
  await Promise.all([dialer.cluster.listen(), acceptor.cluster.listen()]);
  proxy = new Proxy(acceptor.cluster.port);
  dialer.cluster.addPeer(20, { host: HOST, port: await proxy.listen() });
  acceptor.cluster.addPeer(10, { host: HOST, port: dialer.cluster.port });
  await talk();
});
afterEach(async () => {
  await closeAll([dialer, acceptor]);
  await proxy.close();
});

/** Each side sends the other a vote of a fresh term, and both arrive. */
async function talk(): Promise<number> {
  const t = term++;
  dialer.cluster.sendMessage(20, vote(10, t));
  acceptor.cluster.sendMessage(10, vote(20, t));
  const arrived = (n: Node): boolean => n.received.some((m) => m.term === t);
  await waitFor(() => arrived(acceptor) && arrived(dialer), `messages of term ${t}`);
  return t;
}

/** The acceptor closed the connection for a forged frame, delivered nothing forged, and the pair recovers. */
async function rejected(): Promise<void> {
  await waitFor(() => acceptor.cluster.stats.forgedFrames === 1, 'the forged frame to be counted');
  expect(acceptor.cluster.stats.badFrames).toBe(1);
  const e = acceptor.events.find((ev) => ev.type === 'badFrame');
  expect(e?.peer).toBe(10);
  expect(e?.reason).toMatch(/frame authentication failed/);
  expect(acceptor.received.filter((m) => m.term >= 1000)).toEqual([]);
  const connections = proxy.connections;
  await waitFor(() => proxy.connections > connections, 'the dialer to reconnect');
  await talk();
}

describe('per-frame authentication without TLS', { timeout: 20_000 }, () => {
  it('rejects an append injected by a proxy (term + 1000, the right sender)', async () => {
    proxy.inject(encodeFrames([msgpackCodec.encode(append(10, term + 1000, 1))]));
    await rejected();
  });

  it('rejects a frame in the authenticated format with a guessed tag', async () => {
    const body = msgpackCodec.encode(append(10, term + 1000, 1));
    proxy.inject(encodeFrames([Buffer.concat([Buffer.of(0), body, randomBytes(16)])]));
    await rejected();
  });

  it('rejects a replayed frame: the message is delivered once', async () => {
    const t = await talk();
    const frame = proxy.recorded.at(-1) as Buffer;
    proxy.inject(frame);
    await rejected();
    expect(acceptor.received.filter((m) => m.term === t)).toHaveLength(1);
  });

  it('rejects frames delivered out of order, and a frame missing', async () => {
    for (const tamper of ['swap', 'drop'] as const) {
      const before = acceptor.cluster.stats.forgedFrames;
      proxy.tamper = tamper;
      const [first, second] = [term + 1000, term + 1001];
      term += 2;
      dialer.cluster.sendMessage(20, vote(10, first));
      await new Promise((resolve) => setImmediate(resolve)); // written: the next one is a frame of its own
      dialer.cluster.sendMessage(20, vote(10, second));
      await waitFor(() => acceptor.cluster.stats.forgedFrames === before + 1, `the ${tamper} to be detected`);
      expect(
        acceptor.received.filter((m) => m.term >= 1000),
        tamper,
      ).toEqual([]);
      const connections = proxy.connections;
      await waitFor(() => proxy.connections > connections, 'the dialer to reconnect');
      await talk();
    }
  });
});
