// The verdicts of a run: the history (plus every member's final state, read as one last get per
// key and member) must be linearizable; on failure, the smallest non-linearizable sub-history
// the shrinker finds is printed.
import { checkLinearizable, type HistoryOp } from '../helpers/linearizability.js';
import type { Recorded } from './workload.js';

/** The history the checker sees: failed operations changed nothing and are left out. */
export function checkable(history: Recorded[]): HistoryOp[] {
  return history
    .filter((h) => h.outcome !== 'fail')
    .map((h) => {
      const { outcome: _o, duringFault: _d, ...op } = h;
      return op;
    });
}

/**
 * Final reads: member `id`'s value of every key, as a get at `at` (after every operation), so an
 * acknowledged write missing on any member makes the history non-linearizable.
 */
export function finalReads(
  id: number,
  data: Record<string, string>,
  keys: string[],
  at: number,
  strip: (v: string) => string,
): HistoryOp[] {
  return keys.map((key) => ({
    client: 1000 + id,
    op: { kind: 'get', key },
    call: at,
    ret: at,
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
export function verify(history: HistoryOp[], shrinkMs = 30_000): Verdict {
  let r;
  try {
    r = checkLinearizable(history, { maxStates: MAX_STATES });
  } catch (error) {
    return { ok: false, report: `the checker gave up: ${(error as Error).message}`, states: MAX_STATES };
  }
  if (r.ok) return { ok: true, states: r.statesExplored };
  const key = r.key!;
  const small = shrink(
    history.filter((h) => h.op.key === key),
    Date.now() + shrinkMs,
  );
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
 * Shrinks one key's failing ops. The only steps are sound ones: forget a delete's answer, drop a
 * get, or weaken a completed write to an unknown outcome (then leave it out where the checker
 * would). Each step only adds possible linearizations, so a history that still fails proves the
 * original fails. First the window: everything invoked after some time E is relaxed that way,
 * and every read done before some time S dropped (E and S by bisection); then delta debugging.
 */
export function shrink(ops: HistoryOp[], deadline: number): HistoryOp[] {
  const fails = (h: HistoryOp[]): boolean => {
    try {
      return !checkLinearizable(h, { maxStates: 10_000 }).ok;
    } catch {
      return false;
    }
  };
  /** The op made as weak as it can be: undefined for a get (dropped). */
  const relax = (h: HistoryOp): HistoryOp | undefined => {
    if (h.op.kind === 'get') return undefined;
    const { ret: _r, existed: _e, ...rest } = h;
    return rest;
  };
  const relaxWhere = (h: HistoryOp[], pred: (o: HistoryOp) => boolean): HistoryOp[] =>
    h.flatMap((o) => {
      if (!pred(o)) return [o];
      const r = relax(o);
      return r ? [r] : [];
    });
  let cur = ops.map((h) => ({ ...h })).sort((a, b) => a.call - b.call);
  // Without any delete that found the key, the checker can leave out every unknown write whose
  // value nobody reads, which keeps the steps below fast: so first try without the answers.
  const unanswered = cur.map((h) => {
    const { existed: _e, ...rest } = h;
    return rest;
  });
  if (fails(unanswered)) cur = unanswered;
  // The window's end: the earliest E such that the ops invoked up to E still fail, once the ops
  // invoked later are relaxed, or left out if invoked after every kept op completed (any
  // linearization orders those after all of them, so leaving them out keeps it valid).
  const cut = (h: HistoryOp[], e: number): HistoryOp[] => {
    const last = h.reduce((m, o) => (o.call <= e && o.ret !== undefined ? Math.max(m, o.ret) : m), e);
    return relaxWhere(
      h.filter((o) => o.call <= last),
      (o) => o.call > e,
    );
  };
  const calls = [...new Set(cur.map((h) => h.call))].sort((a, b) => a - b);
  let lo = 0;
  let hi = calls.length - 1;
  while (lo < hi && Date.now() < deadline) {
    const mid = Math.floor((lo + hi) / 2);
    if (fails(cut(cur, calls[mid]!))) hi = mid;
    else lo = mid + 1;
  }
  if (fails(cut(cur, calls[hi]!))) cur = cut(cur, calls[hi]!);
  // The window's start: the latest S such that dropping every read done before S still fails.
  // (Writes before it are kept as they are: weakened, they could float up to the failure, and
  // the checker would have to try them everywhere.)
  const readAt = cur.filter((h) => h.op.kind === 'get' && h.ret !== undefined).map((h) => h.ret!);
  const rets = [...new Set(readAt)].sort((a, b) => a - b);
  const before = (h: HistoryOp[], s: number): HistoryOp[] => h.filter((o) => !(o.op.kind === 'get' && o.ret! <= s));
  lo = 0;
  hi = rets.length;
  while (lo < hi && Date.now() < deadline) {
    const mid = Math.ceil((lo + hi) / 2);
    if (fails(before(cur, rets[mid - 1]!))) lo = mid;
    else hi = mid - 1;
  }
  if (lo > 0) cur = before(cur, rets[lo - 1]!);
  // Inside the window, in halving chunks: first drop reads (fewer values observed lets the checker
  // leave out more unknown writes), then weaken writes.
  for (const pass of ['get', 'write'] as const) {
    const target = (o: HistoryOp): boolean =>
      pass === 'get' ? o.op.kind === 'get' : o.op.kind !== 'get' && o.ret !== undefined;
    for (let chunk = Math.max(1, Math.floor(cur.length / 2)); Date.now() < deadline; chunk = Math.floor(chunk / 2)) {
      for (let at = 0; at < cur.length && Date.now() < deadline;) {
        const slice = cur.slice(at, at + chunk);
        if (!slice.some(target)) {
          at += chunk;
          continue;
        }
        const changed = slice.flatMap((o) => (!target(o) ? [o] : pass === 'get' ? [] : [relax(o)!]));
        const next = [...cur.slice(0, at), ...changed, ...cur.slice(at + chunk)];
        if (fails(next)) cur = next;
        else at += chunk;
      }
      if (chunk <= 1) break;
    }
  }
  // Then the deletes' answers that are left.
  for (let i = 0; i < cur.length && Date.now() < deadline; i++) {
    if (cur[i]!.existed === undefined) continue;
    const { existed: _e, ...rest } = cur[i]!;
    const next = [...cur];
    next[i] = rest;
    if (fails(next)) cur = next;
  }
  // Unknown writes the checker itself leaves out as unobservable (same rule) only clutter the picture.
  const done = cur.filter((h) => h.ret !== undefined);
  const read = new Set(done.filter((h) => h.op.kind === 'get').map((h) => h.output));
  const presence = done.some((h) => h.op.kind === 'delete' && h.existed === true);
  const absence = read.has(undefined) || done.some((h) => h.op.kind === 'delete' && h.existed !== undefined);
  const tidy = cur.filter(
    (h) => h.ret !== undefined || (h.op.kind === 'put' ? presence || read.has(h.op.value) : absence),
  );
  return fails(tidy) ? tidy : cur;
}
