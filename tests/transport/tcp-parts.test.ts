/** The pieces under the TCP transport: framing, the bounded queue, the handshake's encoding, the codecs. */
import { describe, expect, it } from 'vitest';
import { jsonCodec, msgpackCodec } from '../../src/transport/codec.js';
import { encodeFrame, encodeFrames, FrameDecoder, FrameTooLargeError, frameHeader } from '../../src/transport/frame.js';
import {
  computeProof,
  decodeHello,
  encodeHello,
  MAX_HANDSHAKE_FRAME,
  newNonce,
  verifyHello,
  verifyProof,
} from '../../src/transport/handshake.js';
import { BoundedQueue } from '../../src/transport/queue.js';
import { PendingPool } from '../../src/transport/admission.js';
import { FrameKind, FrameOpener, FrameSealer, frameKey, splitBatch } from '../../src/transport/frame-auth.js';
import { append, vote } from './fixtures/harness.js';
import { seededRandom } from '../../src/sim/random.js';

/** The project's seeded PRNG, so a failure replays. */
const rng = seededRandom;

describe('FrameDecoder', () => {
  it('reassembles frames however the stream is cut', () => {
    const random = rng(42);
    const payloads = Array.from({ length: 300 }, (_, i) =>
      Buffer.alloc(i % 7 === 0 ? 0 : Math.floor(random() * 3000), i % 256),
    );
    const stream = encodeFrames(payloads);
    for (const maxCut of [1, 3, 5, 64, 4096, stream.length]) {
      const decoder = new FrameDecoder(1 << 20);
      const out: Buffer[] = [];
      for (let at = 0; at < stream.length;) {
        const n = 1 + Math.floor(random() * maxCut);
        decoder.push(stream.subarray(at, at + n));
        at += n;
        for (let f = decoder.next(); f !== undefined; f = decoder.next()) out.push(Buffer.from(f));
      }
      expect(out.length).toBe(payloads.length);
      expect(out.every((f, i) => f.equals(payloads[i] as Buffer))).toBe(true);
      expect(decoder.buffered).toBe(0);
    }
  });

  it('rejects an oversized header as soon as its 4 bytes are in', () => {
    const decoder = new FrameDecoder(100);
    decoder.push(encodeFrame(Buffer.alloc(100)));
    expect(decoder.next()?.length).toBe(100);
    decoder.push(frameHeader(101).subarray(0, 2));
    expect(decoder.next()).toBeUndefined();
    decoder.push(frameHeader(101).subarray(2));
    expect(() => decoder.next()).toThrow(FrameTooLargeError);
  });

  it('returns a frame within one chunk as a view, without copying', () => {
    const chunk = encodeFrames([Buffer.from('abc'), Buffer.from('defg')]);
    const decoder = new FrameDecoder(10);
    decoder.push(chunk);
    const first = decoder.next() as Buffer;
    expect(first.toString()).toBe('abc');
    expect(first.buffer).toBe(chunk.buffer);
    expect(decoder.next()?.toString()).toBe('defg');
    expect(decoder.next()).toBeUndefined();
  });
});

describe('BoundedQueue', () => {
  it('keeps order, grows on demand and drops the oldest when full', () => {
    const q = new BoundedQueue<number>(40);
    const dropped: number[] = [];
    for (let i = 0; i < 100; i++) {
      const oldest = q.peek();
      const d = q.push(i);
      expect(d).toBe(i < 40 ? 0 : 1);
      if (d > 0) dropped.push(oldest!);
      if (i % 3 === 0) expect(q.peek()).toBe(Math.max(0, i - 39));
    }
    expect(dropped).toEqual(Array.from({ length: 60 }, (_, i) => i));
    expect(q.length).toBe(40);
    expect(q.shift()).toBe(60);
    expect(q.drain()).toEqual(Array.from({ length: 39 }, (_, i) => 61 + i));
    expect(q.length).toBe(0);
    expect(q.shift()).toBeUndefined();
    expect(() => new BoundedQueue(0)).toThrow(TypeError);
  });

  it('bounded in bytes, drops the oldest items until the new one fits, but always keeps the new one', () => {
    const q = new BoundedQueue<string>(1000, 10, (s) => s.length);
    expect([q.push('aaaa'), q.push('bbbb'), q.bytes]).toEqual([0, 0, 8]);
    expect(q.push('ccc')).toBe(1); // 'aaaa' goes: 4 + 3 <= 10
    expect([q.drain(), q.bytes]).toEqual([['bbbb', 'ccc'], 0]);
    q.push('dd');
    expect(q.push('x'.repeat(50))).toBe(1); // alone over the bound, it is kept all the same
    expect([q.length, q.bytes, q.shift()?.length, q.bytes]).toEqual([1, 50, 50, 0]);
    expect(() => new BoundedQueue(5, 0)).toThrow(TypeError);
  });
});

describe('handshake encoding', () => {
  it('round-trips a hello and rejects malformed ones', () => {
    const hello = { role: 'dialer' as const, sender: -3, receiver: 2 ** 40, nonce: newNonce(), codec: 'msgpack' };
    const secret = Buffer.from('a cluster secret of some length');
    const bytes = encodeHello(hello, secret);
    expect(bytes.length).toBeLessThanOrEqual(MAX_HANDSHAKE_FRAME);
    expect(decodeHello(bytes)).toEqual(hello);
    expect(verifyHello(secret, bytes)).toBe(true);
    expect(verifyHello(Buffer.from('another secret, just as long'), bytes)).toBe(false);
    const tampered = Buffer.from(bytes);
    tampered.writeDoubleBE(7, 6); // another sender
    expect(decodeHello(tampered)?.sender).toBe(7);
    expect(verifyHello(secret, tampered)).toBe(false);
    expect(decodeHello(bytes.subarray(0, bytes.length - 1))).toBeUndefined();
    expect(decodeHello(Buffer.concat([bytes, Buffer.of(0)]))).toBeUndefined();
    const fractional = Buffer.from(bytes);
    fractional.writeDoubleBE(1.5, 6);
    expect(decodeHello(fractional)).toBeUndefined();
    const role = Buffer.from(bytes);
    role[5] = 0x58;
    expect(decodeHello(role)).toBeUndefined();
  });

  it('binds proofs to the secret, the role, the ids and both nonces', () => {
    const secret = Buffer.from('a cluster secret of some length');
    const t = { dialer: 1, acceptor: 2, dialerNonce: newNonce(), acceptorNonce: newNonce(), codec: 'json' };
    const proof = computeProof(secret, 'dialer', t);
    expect(verifyProof(secret, 'dialer', t, proof)).toBe(true);
    expect(verifyProof(Buffer.from('another secret, just as long'), 'dialer', t, proof)).toBe(false);
    expect(verifyProof(secret, 'acceptor', t, proof)).toBe(false);
    for (const changed of [
      { dialer: 3 },
      { acceptor: 3 },
      { dialerNonce: newNonce() },
      { acceptorNonce: newNonce() },
      { codec: 'msgpack' },
    ]) {
      expect(verifyProof(secret, 'dialer', { ...t, ...changed }, proof)).toBe(false);
    }
    expect(verifyProof(secret, 'dialer', t, proof.subarray(1))).toBe(false);
  });
});

describe('codecs', () => {
  for (const codec of [jsonCodec, msgpackCodec]) {
    it(`${codec.name} round-trips every message kind and throws on garbage`, () => {
      for (const m of [
        vote(1, 2),
        append(1, 3, 0),
        append(2, 5, 64),
        {
          type: 'snapshot',
          from: 1,
          term: 4,
          snapshot: { lastIncludedIndex: 9, lastIncludedTerm: 4, data: { a: [1, 'x', null] } },
        },
      ]) {
        expect(codec.decode(codec.encode(m))).toEqual(m);
        expect(codec.decode(new Uint8Array(codec.encode(m)))).toEqual(m); // not only Buffers
      }
      expect(() => codec.decode(Buffer.from([0xc1, 0x7b, 0x22]))).toThrow();
    });
  }
});

describe('frame authentication', () => {
  const t = { dialer: 1, acceptor: 2, dialerNonce: newNonce(), acceptorNonce: newNonce(), codec: 'msgpack' };
  const secret = Buffer.from('a cluster secret of some length');
  const frames = (sealed: Buffer): Buffer[] => {
    const d = new FrameDecoder(1 << 20);
    d.push(sealed);
    const out: Buffer[] = [];
    for (let f = d.next(); f !== undefined; f = d.next()) out.push(f);
    return out;
  };

  it('opens what was sealed, in order, and nothing forged, replayed, reordered or from the other direction', () => {
    const bodies = [Buffer.from('one'), Buffer.alloc(0), Buffer.alloc(70_000, 7)];
    const sealer = new FrameSealer(frameKey(secret, 'dialer', t));
    const wire = [sealer.sealMessages(bodies.slice(0, 1)), sealer.sealMessages(bodies)];
    wire.push(Buffer.concat(sealer.seal(FrameKind.ping, bodies[2] as Buffer))); // sealed last: third in order
    const [a, b, c] = frames(Buffer.concat(wire));
    const opener = (): FrameOpener => new FrameOpener(frameKey(secret, 'dialer', t));
    const o = opener();
    expect([a, b, c].map((f) => o.open(f as Buffer))).toEqual([
      { kind: FrameKind.message, body: bodies[0] },
      { kind: FrameKind.batch, body: expect.any(Buffer) },
      { kind: FrameKind.ping, body: bodies[2] },
    ]);
    const again = opener();
    again.open(a as Buffer);
    expect(splitBatch((again.open(b as Buffer) as { body: Buffer }).body)).toEqual(bodies);
    expect(splitBatch(Buffer.of(0, 0, 0, 9, 1))).toBeUndefined(); // a length beyond the batch
    expect(splitBatch(Buffer.of(0, 0))).toBeUndefined(); // a cut length
    expect(o.open(c as Buffer)).toBeUndefined(); // replayed
    expect(opener().open(b as Buffer)).toBeUndefined(); // out of order
    expect(new FrameOpener(frameKey(secret, 'acceptor', t)).open(a as Buffer)).toBeUndefined(); // reflected
    const elsewhere = new FrameOpener(frameKey(secret, 'dialer', { ...t, acceptorNonce: newNonce() }));
    expect(elsewhere.open(a as Buffer)).toBeUndefined(); // another connection
    const flipped = Buffer.from(a as Buffer);
    flipped[1] = (flipped[1] as number) ^ 1;
    expect(opener().open(flipped)).toBeUndefined(); // altered
    expect(opener().open(Buffer.alloc(5))).toBeUndefined(); // too short to hold a tag
  });
});

describe('admission of connections yet to say hello', () => {
  const limits = { soft: 2, hard: 4, perAddress: 3, evictAfter: 100 };
  const entry = (address: string, since: number): { address: string; since: number } => ({ address, since });

  it("admits every newcomer; beyond soft replaces one old enough, beyond hard the busiest address's oldest", () => {
    const pool = new PendingPool(limits);
    const [a, b, c, d] = [entry('x', 0), entry('x', 10), entry('y', 20), entry('y', 30)];
    expect(pool.admit(a, 0)).toBeUndefined();
    expect(pool.admit(b, 10)).toBeUndefined();
    expect(pool.admit(c, 20)).toBeUndefined(); // beyond soft, but none has had 100 ms: no one replaced
    expect(pool.admit(d, 30)).toBeUndefined();
    expect(pool.size).toBe(4);
    const e = entry('z', 40);
    expect(pool.admit(e, 40)).toBe(a); // at hard: the oldest of the busiest address (x and y tie: older)
    expect(pool.admit(entry('z', 150), 150)).toBe(c); // all old enough: the busiest address (y) gives its oldest
    expect(pool.size).toBe(4);
  });

  it("replaces a connection of the newcomer's own address once that address is at its limit", () => {
    const pool = new PendingPool({ ...limits, soft: 10, hard: 10 });
    const xs = [entry('x', 0), entry('x', 1), entry('x', 2)];
    for (const x of xs) expect(pool.admit(x, x.since)).toBeUndefined();
    expect(pool.admit(entry('y', 3), 3)).toBeUndefined();
    expect(pool.admit(entry('x', 4), 4)).toBe(xs[0]); // young, but x is at 3: its oldest goes, never y's
    pool.delete(xs[1] as { address: string; since: number });
    expect(pool.admit(entry('x', 5), 5)).toBeUndefined();
  });
});
