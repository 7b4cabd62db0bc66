// The verdicts of a run: the history (plus every member's final state, read as one last get per
// key and member) must be linearizable; on failure, the smallest non-linearizable sub-history
// the shrinker finds is printed.
import { checkLinearizable, type HistoryOp } from '../helpers/linearizability.js';
import type { Recorded } from './workload.js';

/** The history the checker sees: failed operations changed nothing and are left out. */
export function checkable(history: Recorded[]): HistoryOp[] {
  return history.filter((h) => h.outcome !== 'fail').map((h) => {
    const { outcome: _o, duringFault: _d, ...op } = h;
    return op;
  });
}

/**
 * Final reads: member `id`'s value of every key, as a get at `at` (after every operation), so an
 * acknowledged write missing on any member makes the history non-linearizable.
 */
export function finalReads(id: number, data: Record<string, string>, keys: string[], at: number, strip: (v: string) => string): HistoryOp[] {
  return keys.map((key) => ({
    client: 1000 + id, op: { kind: 'get', key }, call: at, ret: at,
    output: data[key] === undefined ? undefined : strip(data[key]!),
  }));
}

/** Result of {@link verify}. */
export interface Verdict {
  ok: boolean;
  /** On failure: the explanation for the smallest failing sub-history found. */
  report?: string;
  states: number;
}

const MAX_STATES = 20_000_000;

/** Checks the history; on failure shrinks it (for at most `shrinkMs`) and explains the result. */
export function verify(history: HistoryOp[], shrinkMs = 60_000): Verdict {
  let r;
  try {
    r = checkLinearizable(history, { maxStates: MAX_STATES });
  } catch (error) {
    return { ok: false, report: `the checker gave up: ${(error as Error).message}`, states: MAX_STATES };
  }
  if (r.ok) return { ok: true, states: r.statesExplored };
  const key = r.key!;
  const small = shrink(history.filter((h) => h.op.key === key), Date.now() + shrinkMs);
  const again = checkLinearizable(small, { maxStates: MAX_STATES });
  const report = [
    `not linearizable on key ${JSON.stringify(key)}; smallest failing sub-history found: ${small.length} ops ` +
      `(of ${history.filter((h) => h.op.key === key).length} on that key). Times are ms since the run began; ` +
      `a write shown with "?" was weakened to an unknown outcome by the shrinker, which only ever removes reads ` +
      `and weakens writes, so any sub-history it keeps failing proves the whole one fails:`,
    again.explanation ?? '(the shrunk history passed: shrinking bug)',
  ].join('\n');
  return { ok: false, report, states: r.statesExplored };
}

/**
 * Delta debugging over one key's ops. The only steps are sound ones: drop a get, or weaken a
 * completed write to an unknown outcome (then drop it if nothing reads its value). Each step only
 * adds possible linearizations, so a history that still fails proves the original fails.
 */
export function shrink(ops: HistoryOp[], deadline: number): HistoryOp[] {
  const fails = (h: HistoryOp[]): boolean => {
    try {
      return !checkLinearizable(h, { maxStates: 2_000_000 }).ok;
    } catch {
      return false;
    }
  };
  const weaken = (h: HistoryOp): HistoryOp | undefined => {
    if (h.op.kind === 'get' || h.ret === undefined) return undefined;
    const { ret: _r, existed: _e, ...rest } = h;
    return rest;
  };
  let cur = ops.map((h) => ({ ...h })).sort((a, b) => a.call - b.call);
  for (let chunk = Math.max(1, Math.floor(cur.length / 2)); chunk >= 1 && Date.now() < deadline; chunk = Math.floor(chunk / 2)) {
    for (let at = 0; at < cur.length && Date.now() < deadline;) {
      // Try removing the chunk's gets and weakening its completed writes. (An unknown write is
      // kept: dropping one is not sound, as a read may need it.)
      const next: HistoryOp[] = [];
      let changed = false;
      cur.forEach((h, i) => {
        if (i < at || i >= at + chunk) { next.push(h); return; }
        if (h.op.kind === 'get') { changed = true; return; }
        const w = weaken(h);
        if (w) changed = true;
        next.push(w ?? h);
      });
      if (changed && fails(next)) cur = next;
      else at += chunk;
    }
    if (chunk === 1) break;
  }
  // Unknown writes the checker itself drops as unobservable (same rule) only clutter the picture.
  const done = cur.filter((h) => h.ret !== undefined);
  const read = new Set(done.filter((h) => h.op.kind === 'get').map((h) => h.output));
  const presence = done.some((h) => h.op.kind === 'delete' && h.existed === true);
  const absence = read.has(undefined) || done.some((h) => h.op.kind === 'delete' && h.existed !== undefined);
  const tidy = cur.filter((h) => h.ret !== undefined || (h.op.kind === 'put' ? presence || read.has(h.op.value) : absence));
  return fails(tidy) ? tidy : cur;
}
