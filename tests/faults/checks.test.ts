// The fault suite's verdicts: failed operations are left out, final states count as reads, and a
// failing history shrinks to a small sub-history that still fails (by sound steps only).
import { describe, expect, it } from 'vitest';
import { checkLinearizable, type HistoryOp } from '../helpers/linearizability.js';
import { checkable, finalReads, shrink, verify } from './checks.js';
import type { Recorded } from './workload.js';

const put = (client: number, value: string, call: number, ret?: number): HistoryOp => ({
  client,
  op: { kind: 'put', key: 'k', value },
  call,
  ...(ret === undefined ? {} : { ret }),
});
const get = (client: number, output: string | undefined, call: number, ret: number): HistoryOp => ({
  client,
  op: { kind: 'get', key: 'k' },
  call,
  ret,
  output,
});
const del = (client: number, existed: boolean, call: number, ret: number): HistoryOp => ({
  client,
  op: { kind: 'delete', key: 'k' },
  call,
  ret,
  existed,
});

/** Many sequential clients' ops: puts, gets and deletes that are all consistent. */
function busy(n: number): HistoryOp[] {
  const out: HistoryOp[] = [];
  let value: string | undefined;
  for (let i = 0; i < n; i++) {
    const t = i * 10;
    if (i % 3 === 0) {
      value = `v${i}`;
      out.push(put(i % 4, value, t, t + 5));
    } else if (i % 7 === 0) {
      out.push(del(i % 4, value !== undefined, t, t + 5));
      value = undefined;
    } else out.push(get(i % 4, value, t, t + 5));
  }
  return out;
}

describe('fault suite checks', () => {
  it('leaves failed operations out and keeps unknown ones', () => {
    const rec = (h: HistoryOp, outcome: Recorded['outcome']): Recorded => ({ ...h, outcome, duringFault: true });
    const out = checkable([rec(put(1, 'a', 0, 1), 'ok'), rec(put(2, 'b', 2), 'fail'), rec(put(3, 'c', 3), 'unknown')]);
    expect(out.map((h) => h.op.kind === 'put' && h.op.value)).toEqual(['a', 'c']);
    expect(out[0]).not.toHaveProperty('outcome');
  });

  it('turns a member whose state lost an acknowledged write into a failure', () => {
    const history = [put(1, 'a', 0, 1), put(1, 'b', 2, 3)];
    expect(verify([...history, ...finalReads(1, { k: 'b' }, ['k'], 10, (v) => v)]).ok).toBe(true);
    const lost = verify([...history, ...finalReads(2, { k: 'a' }, ['k'], 10, (v) => v)]);
    expect(lost.ok).toBe(false);
    expect(lost.report).toContain('c1002 get("k") -> "a"');
  });

  it('shrinks a stale read in a long history to a few ops that still fail', () => {
    const history = busy(300);
    // A stale read in the middle: reads the value of the put before the latest one.
    const at = 1510;
    history.push(get(9, 'v147', at + 1, at + 3));
    expect(checkLinearizable(history).ok).toBe(false);
    const small = shrink(history, Date.now() + 20_000);
    expect(small.length).toBeLessThanOrEqual(4);
    expect(checkLinearizable(small).ok).toBe(false);
    expect(small.some((h) => h.client === 9)).toBe(true);
  }, 30_000);

  it('keeps a delete that found nothing where that is the violation', () => {
    const history = [...busy(60), put(5, 'x', 700, 701), del(6, false, 702, 703)];
    const small = shrink(history, Date.now() + 10_000);
    expect(checkLinearizable(small).ok).toBe(false);
    expect(small).toContainEqual(del(6, false, 702, 703));
    // Earlier writes, weakened, may float up to the delete: sound shrinking keeps some of them.
    expect(small.length).toBeLessThan(history.length / 2);
  }, 30_000);
});
