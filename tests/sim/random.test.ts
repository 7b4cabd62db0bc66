import { describe, it, expect } from 'vitest';
import { deriveSeed, seededRandom } from '../../src/sim/random.js';

const take = (random: () => number, n: number): number[] => Array.from({ length: n }, random);

describe('seededRandom', () => {
  it('replays the same sequence for the same seed', () => {
    expect(take(seededRandom(42), 1000)).toEqual(take(seededRandom(42), 1000));
  });

  it('gives different sequences for different seeds, including 0, negatives and seeds above 2^32', () => {
    const seeds = [0, 1, 2, -1, 2 ** 32, 2 ** 32 + 1, Number.MAX_SAFE_INTEGER];
    const firsts = seeds.map((s) => take(seededRandom(s), 4).join(','));
    expect(new Set(firsts).size).toBe(seeds.length);
  });

  it('returns floats in [0, 1) spread evenly', () => {
    const random = seededRandom(7);
    const buckets = new Array<number>(10).fill(0);
    const n = 100_000;
    let outside = 0;
    for (let i = 0; i < n; i++) {
      const x = random();
      if (!(x >= 0 && x < 1)) outside++;
      else buckets[Math.floor(x * 10)]!++;
    }
    expect(outside).toBe(0);
    for (const count of buckets) expect(Math.abs(count - n / 10)).toBeLessThan(n / 100);
  });

  it('rejects a seed that is not a safe integer', () => {
    for (const bad of [1.5, NaN, Infinity, 2 ** 53]) expect(() => seededRandom(bad)).toThrow(TypeError);
  });
});

describe('deriveSeed', () => {
  it('is a pure function giving 32-bit unsigned seeds', () => {
    for (let stream = 0; stream < 100; stream++) {
      const s = deriveSeed(9, stream);
      expect(s).toBe(deriveSeed(9, stream));
      expect(Number.isInteger(s) && s >= 0 && s < 2 ** 32).toBe(true);
    }
  });

  it('gives distinct, uncorrelated streams', () => {
    const seeds = new Set<number>();
    for (let seed = 0; seed < 50; seed++)
      for (let stream = 0; stream < 50; stream++) seeds.add(deriveSeed(seed, stream));
    expect(seeds.size).toBe(2500);
    expect(deriveSeed(1, 2)).not.toBe(deriveSeed(2, 1));
    // Two neighbouring streams should not move together.
    const a = take(seededRandom(deriveSeed(3, 1)), 5000);
    const b = take(seededRandom(deriveSeed(3, 2)), 5000);
    const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
    const ma = mean(a),
      mb = mean(b);
    const cov = mean(a.map((x, i) => (x - ma) * (b[i]! - mb)));
    expect(Math.abs(cov / (1 / 12))).toBeLessThan(0.05);
  });

  it('rejects arguments that are not safe integers', () => {
    expect(() => deriveSeed(0.5, 1)).toThrow(TypeError);
    expect(() => deriveSeed(1, NaN)).toThrow(TypeError);
  });
});
