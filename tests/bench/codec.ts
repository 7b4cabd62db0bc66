/**
 * Encode+decode cost of the transport codecs on AppendEntries of 1, 64 and 512 entries with small
 * `{ id, k, v }` transitions. Run: `npm run build && node dist/tests/bench/codec.js`.
 */
import { appendRequest, type Message } from '../../src/core/message.js';
import type { Codec } from '../../src/core/codec.js';
import { jsonCodec, msgpackCodec } from '../../src/transport/codec.js';

interface Kv {
  id: number;
  k: string;
  v: string;
}

const message = (n: number): Message<Kv> =>
  appendRequest<Kv>({
    from: 1,
    term: 7,
    prevLogIndex: 1000,
    prevLogTerm: 7,
    leaderCommit: 999,
    entries: Array.from({ length: n }, (_, i) => ({
      index: 1001 + i,
      term: 7,
      kind: 'transition' as const,
      transition: { id: 100_000 + i, k: `k${i % 100}`, v: `v${i}` },
    })),
  });

/** Best µs per encode+decode over rounds that alternate the codecs, so load on the machine hits both alike. */
function compare(codecs: Codec[], m: Message<Kv>, iterations: number, rounds = 9): { us: number; bytes: number }[] {
  const results = codecs.map((c) => ({ us: Infinity, bytes: c.encode(m).byteLength }));
  for (const c of codecs) for (let i = 0; i < iterations / 2; i++) c.decode(c.encode(m)); // warm up
  for (let round = 0; round < rounds; round++) {
    codecs.forEach((codec, k) => {
      const start = process.hrtime.bigint();
      for (let i = 0; i < iterations; i++) codec.decode(codec.encode(m));
      const r = results[k] as { us: number };
      r.us = Math.min(r.us, Number(process.hrtime.bigint() - start) / 1000 / iterations);
    });
  }
  return results;
}

console.log('entries  codec      µs/message (encode+decode)   bytes');
for (const n of [1, 64, 512]) {
  const codecs = [jsonCodec, msgpackCodec];
  const results = compare(codecs, message(n), Math.max(100, Math.floor(100_000 / (n * 2 + 1))));
  results.forEach(({ us, bytes }, k) => {
    console.log(
      `${String(n).padStart(7)}  ${(codecs[k]?.name ?? '').padEnd(8)}  ${us.toFixed(2).padStart(12)}  ${String(bytes).padStart(20)}`,
    );
  });
}
