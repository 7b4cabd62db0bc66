// tickraft-kv routes on the request target's pathname without the URL parser when parsing could
// not change it; every target must route exactly as `new URL(target, base).pathname` would.
import { describe, expect, it } from 'vitest';
import { requestPath } from '../../docs/examples/kv/http.js';

const parsed = (target: string): string => new URL(target, 'http://localhost').pathname;

describe('tickraft-kv: the request path', () => {
  it('is the pathname the URL parser gives, for tricky targets', () => {
    const targets = [
      '/kv/a',
      '/kv/a.b',
      "/kv/it's",
      '/kv/%zz',
      '/kv/a%2e',
      '/kv/%2e%2e/status',
      '/kv/%2E/x',
      '/kv/./x',
      '/kv/..',
      '/kv/a/../b',
      '/kv/a?b=c',
      '/kv/a#frag',
      '/kv/a\\..\\status',
      '/kv/a b',
      '/kv/é',
      '/kv/a"b<c>d`e{f}g',
      '/kv//x',
      '//kv/x',
      '/status',
      '/',
    ];
    for (const t of targets) expect(requestPath(t), t).toBe(parsed(t));
  });

  it('is the pathname the URL parser gives, for random targets', () => {
    const chars = 'abZ09_-.~!$&\'()*+,;=:@%/?#\\"<>`{}^|[]é2eE';
    let seed = 12345;
    const next = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let i = 0; i < 20_000; i++) {
      let t = '/kv/';
      for (let j = 1 + next(8); j > 0; j--) t += chars[next(chars.length)];
      expect(requestPath(t), t).toBe(parsed(t));
    }
  });
});
