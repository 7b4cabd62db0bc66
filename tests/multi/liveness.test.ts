import { describe, expect, it } from 'vitest';
import { Liveness } from '../../src/multi/liveness.js';

describe('Liveness (the process-level failure detector of RaftHost)', () => {
  it('suspects a silent peer, notices its return and its restart, and counts a late first contact as a return', () => {
    const l = new Liveness(60, 0);
    expect(l.heard(2, 1, 10)).toBe(false); // first contact, in time
    expect(l.check(70)).toEqual([]);
    expect(l.check(71)).toEqual([2]);
    expect(l.isUp(2, 71)).toBe(false);
    expect(l.heard(2, 1, 80)).toBe(true); // back
    expect(l.heard(2, 1, 81)).toBe(false);
    expect(l.heard(2, 2, 82)).toBe(true); // restarted: a new epoch
    expect(l.isUp(3, 60)).toBe(true); // never heard, not yet suspected
    expect(l.isUp(3, 61)).toBe(false);
    expect(l.heard(3, 1, 100)).toBe(true); // first heard only after it counted as down
  });

  it('tells an idle host when the next suspicion may fall due, so its loop can sleep until then', () => {
    const l = new Liveness(60, 0);
    expect(l.nextCheck()).toBe(Infinity); // nobody heard yet: nothing to suspect
    l.heard(2, 1, 10);
    l.heard(3, 1, 30);
    expect(l.nextCheck()).toBe(71); // peer 2: check() suspects it at 71, not before
    expect(l.check(70)).toEqual([]);
    expect(l.check(71)).toEqual([2]);
    expect(l.nextCheck()).toBe(91); // a suspected peer is not suspected again: peer 3 is next
  });
});
