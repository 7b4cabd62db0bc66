// The fault suite's link proxy on real loopback sockets: bytes pass, a cut direction drops its
// bytes while the other flows, a heal closes the connections that lost bytes, and a delay
// never reorders.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/sim/random.js';
import { Network } from './proxy.js';

const closers: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

/** A server that echoes with a prefix, so each direction can be told apart. */
async function echoServer(): Promise<number> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('data', (d) => s.write(`echo:${d.toString()}`));
    s.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  );
  return (server.address() as net.AddressInfo).port;
}

async function connect(port: number): Promise<{ socket: net.Socket; received: () => string; closed: Promise<void> }> {
  const socket = net.connect({ host: '127.0.0.1', port });
  let text = '';
  socket.on('data', (d) => {
    text += d.toString();
  });
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  closers.push(() => {
    socket.destroy();
  });
  return { socket, received: () => text, closed };
}

async function until(what: string, cond: () => boolean): Promise<void> {
  const end = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function network(): Promise<{ net: Network; port: number }> {
  const target = await echoServer();
  const n = new Network(() => target, seededRandom(1));
  await n.start([1, 2], async (k) => new Array<number>(k).fill(0));
  closers.push(() => n.close());
  return { net: n, port: n.portFor(1, 2) };
}

describe('the fault suite network', () => {
  it('passes bytes both ways', async () => {
    const { port } = await network();
    const c = await connect(port);
    c.socket.write('hello');
    await until('the echo', () => c.received() === 'echo:hello');
  });

  it('drops a cut direction, keeps the other, and closes the broken connection on heal', async () => {
    const { net: n, port } = await network();
    const c = await connect(port);
    // 2 → 1 cut: the request reaches the server, the echo is lost.
    n.setCut(2, 1, true);
    c.socket.write('one');
    await until('bytes dropped', () => n.dropped > 0);
    expect(c.received()).toBe('');
    expect(n.describe()).toBe('cut 2>1');
    n.heal();
    await c.closed;
    expect(n.faulty).toBe(false);
    // A new connection works again.
    const d = await connect(port);
    d.socket.write('two');
    await until('the echo', () => d.received() === 'echo:two');
  });

  it('delays without reordering', async () => {
    const { net: n, port } = await network();
    n.setDelay(1, 2, { ms: 30, jitter: 40 });
    const c = await connect(port);
    const started = Date.now();
    for (const w of ['a', 'b', 'c', 'd', 'e']) c.socket.write(w);
    await until('every echo', () => c.received().replace(/echo:/g, '').length === 5);
    expect(c.received().replace(/echo:/g, '')).toBe('abcde');
    expect(Date.now() - started).toBeGreaterThanOrEqual(25);
  });
});
