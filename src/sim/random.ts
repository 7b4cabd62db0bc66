/**
 * Seeded randomness for simulations: the same seed replays the same run.
 *
 * The generator is mulberry32 (32 bits of state, one add and a few multiply-xorshift steps per
 * draw). It is fast and passes the statistical tests a simulation needs; it is NOT
 * cryptographically secure.
 */

/** Weyl-sequence step of mulberry32: odd, so the state visits all 2^32 values before repeating. */
const WEYL = 0x6d2b79f5;
const TWO_POW_32 = 0x1_0000_0000;

function checkSeed(name: string, value: number): void {
  if (!Number.isSafeInteger(value)) throw new TypeError(`${name} must be a safe integer, got ${String(value)}`);
}

/** Folds a safe integer into 32 bits, keeping the high bits so that seeds above 2^32 still differ. */
function fold(value: number): number {
  const low = value >>> 0;
  const high = Math.floor(value / TWO_POW_32) >>> 0;
  return (low ^ mix32(high)) >>> 0;
}

/** The murmur3 finalizer: every input bit flips about half the output bits. */
function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
}

/**
 * A seeded pseudo-random generator (mulberry32): each call returns the next float in [0, 1).
 * The same seed always yields the same sequence. Hand it to a replica's `random` option, or to
 * anything else in a simulation that must replay exactly.
 *
 * @param seed - Any safe integer (negative and above 2^32 are fine). Seeds that differ give
 *   unrelated sequences; use {@link deriveSeed} for several streams from one seed.
 * @returns A generator of floats in [0, 1), each a multiple of 2^-32.
 * @throws TypeError if `seed` is not a safe integer.
 *
 * @example
 * ```ts
 * const random = seededRandom(42);
 * const roll = 1 + Math.floor(random() * 6); // the same roll on every run with seed 42
 * ```
 */
export function seededRandom(seed: number): () => number {
  checkSeed('seed', seed);
  let state = fold(seed);
  return () => {
    state = (state + WEYL) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 15), z | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    return ((z ^ (z >>> 14)) >>> 0) / TWO_POW_32;
  };
}

/**
 * Derives the seed of an independent stream from one run seed, so that one number replays a
 * whole simulation while each participant (every replica, the network) draws from its own
 * sequence. Streams stay independent of each other's draw counts: a replica that draws more
 * does not shift what another one sees.
 *
 * @param seed - The run's seed: any safe integer.
 * @param stream - Which stream: any safe integer, for example a replica id.
 * @returns A seed in [0, 2^32) for {@link seededRandom}; the same inputs always give the same seed.
 * @throws TypeError if either argument is not a safe integer.
 *
 * @example
 * ```ts
 * const runSeed = 7;
 * const randomOf = (id: number) => seededRandom(deriveSeed(runSeed, id));
 * ```
 */
export function deriveSeed(seed: number, stream: number): number {
  checkSeed('seed', seed);
  checkSeed('stream', stream);
  // Hash each input before combining, so nearby (seed, stream) pairs land far apart and
  // (a, b) does not collide with (b, a).
  return mix32((mix32(fold(seed)) + Math.imul(mix32(fold(stream) ^ WEYL), 0x9e3779b1)) >>> 0);
}
