/**
 * A small linearizability checker for key-value histories, used by the
 * simulation tests to check the replicated KV store under network faults.
 *
 * The model is a map of independent registers (one per key), so the history is
 * split by key (P-compositionality: a history is linearizable iff every
 * per-object sub-history is) and each key is checked on its own with a
 * Wing–Gong search plus Lowe's memoization of visited
 * (set of linearized ops, register value) configurations.
 *
 * Two sound reductions keep the search small in practice: values that no
 * completed get returns are merged into one "unread" value, and a minimal op
 * that changes nothing observable (a get reading the current value, or an
 * unread write while the value is already unread) is taken without branching.
 * The worst case is still exponential in the number of mutually concurrent
 * ops on one key; `maxStates` turns that into an error instead of a hang.
 * Rough costs measured on generated histories with one hot key: 10 clients ×
 * 2,000 ops ≈ 60k configurations (< 0.5 s); 20 clients × 500 ops ≈ 700k
 * configurations (≈ 8 s, ~250 MB).
 *
 * @module
 */

/** An operation on the key-value model. */
export type KvOp =
  | { kind: 'put'; key: string; value: string }
  /** Reads the key; its output is the value read, or `undefined` when the key is absent. */
  | { kind: 'get'; key: string }
  | { kind: 'delete'; key: string };

/** One operation of a recorded client history. */
export interface HistoryOp {
  /** Client that issued the op; a client issues one op at a time. */
  client: number;
  /** The operation itself. */
  op: KvOp;
  /** Virtual time at which the op was invoked. */
  call: number;
  /**
   * Virtual time at which the op returned. `undefined` means the outcome is
   * unknown (timed out / the client gave up): the op may have taken effect at
   * any time after `call`, or never.
   */
  ret?: number;
  /** For a completed `get`: the value read (`undefined` = absent). Ignored for put/delete. */
  output?: string | undefined;
  /**
   * For a completed `delete`: whether the key was present (`undefined` = not observed, any
   * state will do). Ignored for put/get and for an unknown outcome.
   */
  existed?: boolean;
}

/** Result of {@link checkLinearizable}. */
export interface LinearizabilityResult {
  /** True iff the whole history is linearizable. */
  ok: boolean;
  /** On failure: the first key (in order of first appearance) whose sub-history is not linearizable. */
  key?: string;
  /** On failure: a human-readable description of the ops that could not be ordered. */
  explanation?: string;
  /** Number of distinct search configurations visited, summed over the keys checked. */
  statesExplored: number;
}

/** Options for {@link checkLinearizable}. */
export interface LinearizabilityOptions {
  /**
   * Upper bound on the number of distinct search configurations visited, summed
   * over all keys. When exceeded, {@link checkLinearizable} throws rather than
   * passing. Default 1,000,000.
   */
  maxStates?: number;
}

/** Default for {@link LinearizabilityOptions.maxStates}. */
export const DEFAULT_MAX_STATES = 1_000_000;

/** Per-key op after preprocessing; `ret` is `Infinity` for unknown outcome. */
interface KeyOp {
  readonly h: HistoryOp;
  readonly call: number;
  readonly ret: number;
  readonly kind: KvOp['kind'];
  /** Interned value: written value for put, read value for get, 0 (absent) for delete. */
  readonly val: number;
  /** For a delete that observed it: whether the key must be present (true) or absent (false) before it. */
  readonly existed: boolean | undefined;
}

/** Node of the doubly linked list of call/return events (Porcupine-style). */
interface EventNode {
  readonly isCall: boolean;
  readonly opIdx: number;
  readonly time: number;
  prev: EventNode | null;
  next: EventNode | null;
  /** For a call event: its return event. */
  match: EventNode | null;
}

interface Frame {
  readonly entry: EventNode;
  readonly prevState: number;
  /** Taken by the forced-read rule: no sibling needs to be tried. */
  readonly forced: boolean;
}

const EXPLANATION_MAX_LINES = 40;

/** Interned id shared by all values that no completed get returns. */
const UNREAD = -1;

/**
 * Checks whether a key-value history is linearizable with respect to a map of
 * independent registers, every key initially absent.
 *
 * Semantics:
 * - A completed op (with `ret`) must take effect at one instant in `[call, ret]`.
 *   Two ops are ordered in real time only if one's `ret` is strictly less than
 *   the other's `call`; equal times count as concurrent.
 * - An op without `ret` may take effect at any instant after `call`, or never.
 *   A `get` with unknown outcome has no effect and is dropped. A put/delete with
 *   unknown outcome is searched with `ret = +Infinity`; the search succeeds once
 *   every completed op is linearized, so it may also be left out.
 * - A put/delete with unknown outcome whose written value (absent for delete)
 *   is never returned by a completed `get` on that key is dropped up front:
 *   omitting it can never make a linearization invalid (unless a delete found
 *   the key present: then unknown puts are kept, as they may explain it).
 * - A completed delete with `existed` set must find the key present (true) or
 *   absent (false) at its linearization point.
 *
 * @param history - All ops of the run, in any order.
 * @param options - See {@link LinearizabilityOptions}.
 * @returns `{ ok: true }`, or `{ ok: false, key, explanation }` for the first
 *   failing key in order of first appearance (later keys are not checked).
 * @throws Error if the search visits more than `maxStates` configurations
 *   ("history too large"), or if an op has a non-finite `call` or `ret < call`.
 */
export function checkLinearizable(history: HistoryOp[], options?: LinearizabilityOptions): LinearizabilityResult {
  const maxStates = options?.maxStates ?? DEFAULT_MAX_STATES;
  const byKey = new Map<string, HistoryOp[]>();
  for (const h of history) {
    if (!Number.isFinite(h.call)) {
      throw new Error(`checkLinearizable: op has non-finite call time: ${describeOp(h)}`);
    }
    if (h.ret !== undefined && !(h.ret >= h.call)) {
      throw new Error(`checkLinearizable: op returns before it is called: ${describeOp(h)}`);
    }
    let list = byKey.get(h.op.key);
    if (list === undefined) {
      list = [];
      byKey.set(h.op.key, list);
    }
    list.push(h);
  }

  const budget = { used: 0, max: maxStates };
  for (const [key, ops] of byKey) {
    const explanation = checkKey(key, ops, budget);
    if (explanation !== undefined) {
      return { ok: false, key, explanation, statesExplored: budget.used };
    }
  }
  return { ok: true, statesExplored: budget.used };
}

/** Checks one key's sub-history; returns an explanation on failure, undefined if linearizable. */
function checkKey(key: string, all: HistoryOp[], budget: { used: number; max: number }): string | undefined {
  // Intern register values: 0 = absent.
  const ids = new Map<string, number>();
  const names: Array<string | undefined> = [undefined];
  const intern = (v: string | undefined): number => {
    if (v === undefined) return 0;
    let id = ids.get(v);
    if (id === undefined) {
      id = names.length;
      ids.set(v, id);
      names.push(v);
    }
    return id;
  };

  const observed = new Set<number>();
  for (const h of all) {
    if (h.op.kind === 'get' && h.ret !== undefined) observed.add(intern(h.output));
    // A delete that says whether the key existed observes "absent" (against every present value).
    if (h.op.kind === 'delete' && h.ret !== undefined && h.existed !== undefined) observed.add(0);
  }

  const deleteAnswers = all.some((h) => h.op.kind === 'delete' && h.ret !== undefined && h.existed !== undefined);
  const presenceObserved = all.some((h) => h.op.kind === 'delete' && h.ret !== undefined && h.existed === true);
  // Values no completed get returns (absent included) are indistinguishable
  // for the rest of the history: they all map to UNREAD, which merges
  // equivalent search configurations.
  const canon = (id: number): number => (observed.has(id) ? id : UNREAD);

  const ops: KeyOp[] = [];
  let dropped = 0;
  for (const h of all) {
    const known = h.ret !== undefined;
    let val: number;
    if (h.op.kind === 'get') {
      if (!known) {
        dropped++;
        continue;
      }
      val = intern(h.output);
    } else {
      val = canon(h.op.kind === 'put' ? intern(h.op.value) : 0);
      if (!known && val === UNREAD && !presenceObserved) {
        // Never observable, so it can always be treated as never having happened. (A delete
        // that found the key present may need it: then it is kept.)
        dropped++;
        continue;
      }
    }
    const existed = h.op.kind === 'delete' && known ? h.existed : undefined;
    ops.push({ h, call: h.call, ret: h.ret ?? Infinity, kind: h.op.kind, val, existed });
  }
  ops.sort((a, b) => a.call - b.call || a.ret - b.ret);
  const n = ops.length;

  // Build the sorted event list: by time, calls before returns at equal time.
  const events: EventNode[] = [];
  ops.forEach((o, i) => {
    const c: EventNode = { isCall: true, opIdx: i, time: o.call, prev: null, next: null, match: null };
    const r: EventNode = { isCall: false, opIdx: i, time: o.ret, prev: null, next: null, match: null };
    c.match = r;
    events.push(c, r);
  });
  events.sort((a, b) => a.time - b.time || Number(a.isCall ? 0 : 1) - Number(b.isCall ? 0 : 1) || a.opIdx - b.opIdx);
  const head: EventNode = { isCall: false, opIdx: -1, time: -Infinity, prev: null, next: null, match: null };
  let tail = head;
  for (const e of events) {
    tail.next = e;
    e.prev = tail;
    tail = e;
  }

  const lift = (c: EventNode): void => {
    const r = c.match as EventNode;
    (c.prev as EventNode).next = c.next;
    if (c.next !== null) c.next.prev = c.prev;
    (r.prev as EventNode).next = r.next;
    if (r.next !== null) r.next.prev = r.prev;
  };
  const unlift = (c: EventNode): void => {
    const r = c.match as EventNode;
    (r.prev as EventNode).next = r;
    if (r.next !== null) r.next.prev = r;
    (c.prev as EventNode).next = c;
    if (c.next !== null) c.next.prev = c;
  };

  // Memo of visited configurations (Lowe). The set of linearized ops is a
  // bitset over ops sorted by call time; in practice it is "every op below a
  // watermark, plus a few in the concurrency window", so it is stored compactly
  // as (watermark, set indices above it) instead of as a full bitset copy.
  const bits = new Uint32Array(Math.max(1, Math.ceil(n / 32)));
  const isSet = (i: number): boolean => (((bits[i >>> 5] as number) >>> (i & 31)) & 1) === 1;
  let low = 0; // first op index not linearized
  let count = 0; // number of linearized ops
  const setBit = (i: number): void => {
    bits[i >>> 5] = (bits[i >>> 5] as number) | (1 << (i & 31));
    count++;
    while (low < n && isSet(low)) low++;
  };
  const clearBit = (i: number): void => {
    bits[i >>> 5] = (bits[i >>> 5] as number) & ~(1 << (i & 31));
    count--;
    if (i < low) low = i;
  };
  const visited = new Set<string>();
  /** Adds the current (linearized set, state) to the memo; false if already present. */
  const remember = (state: number): boolean => {
    let memoKey = `${state.toString(36)}:${low.toString(36)}`;
    let extra = count - low;
    for (let w = low >>> 5; extra > 0; w++) {
      let word = bits[w] as number;
      if (w === low >>> 5) word &= ~((1 << (low & 31)) - 1) | 0;
      while (word !== 0) {
        const b = 31 - Math.clz32(word & -word);
        word &= word - 1;
        memoKey += `,${((w << 5) + b - low).toString(36)}`;
        extra--;
      }
    }
    if (visited.has(memoKey)) return false;
    visited.add(memoKey);
    return true;
  };

  let remainingFinite = ops.reduce((acc, o) => acc + (o.ret === Infinity ? 0 : 1), 0);
  const stack: Frame[] = [];
  // Deepest stack seen (for the failure explanation), maintained incrementally:
  // entries below `stableDepth` are shared between `best` and the stack.
  const best: number[] = [];
  let stableDepth = 0;
  const initial = canon(0);
  let state = initial;

  /** Linearizes the op of call event `c` giving state `next`, unless that configuration was seen. */
  const tryPush = (c: EventNode, next: number, forced: boolean): boolean => {
    setBit(c.opIdx);
    if (!remember(next)) {
      clearBit(c.opIdx);
      return false;
    }
    budget.used++;
    if (budget.used > budget.max) {
      throw new Error(
        `checkLinearizable: history too large: exceeded maxStates=${budget.max} ` +
          `while checking key ${JSON.stringify(key)} (${n} ops)`,
      );
    }
    stack.push({ entry: c, prevState: state, forced });
    state = next;
    lift(c);
    if ((ops[c.opIdx] as KeyOp).ret !== Infinity) remainingFinite--;
    if (stack.length > best.length) {
      best.length = stableDepth;
      for (let d = stableDepth; d < stack.length; d++) best.push((stack[d] as Frame).entry.opIdx);
      stableDepth = stack.length;
    }
    return true;
  };
  /**
   * Undoes linearizations until one with untried siblings; returns the event
   * to resume scanning from, or null when the search space is exhausted.
   */
  const backtrack = (): EventNode | null => {
    for (;;) {
      const top = stack.pop();
      if (top === undefined) return null;
      if (stack.length < stableDepth) stableDepth = stack.length;
      state = top.prevState;
      clearBit(top.entry.opIdx);
      unlift(top.entry);
      if ((ops[top.entry.opIdx] as KeyOp).ret !== Infinity) remainingFinite++;
      if (!top.forced) return top.entry.next;
    }
  };

  let cursor: EventNode | null = head.next;
  let fresh = true; // just arrived at a new configuration
  for (;;) {
    if (remainingFinite === 0) return undefined;
    if (fresh) {
      fresh = false;
      // Forced-op rule: a minimal op that leaves the state unchanged and can
      // be observed by nothing later (a get reading the current value, or a
      // write of an UNREAD value while the value is already UNREAD) can be moved
      // to the front of any linearization of the remaining ops (no remaining op
      // must precede it), so it is taken without branching; if that fails, this
      // configuration is dead. Not the write when deletes report whether they
      // found the key: moved, it could turn "absent" into "present" under one.
      let forcedGet: EventNode | null = null;
      for (let e = head.next; e !== null && e.isCall; e = e.next) {
        const o = ops[e.opIdx] as KeyOp;
        if (o.kind === 'get' ? o.val === state : !deleteAnswers && o.val === UNREAD && state === UNREAD) {
          forcedGet = e;
          break;
        }
      }
      if (forcedGet !== null) {
        if (tryPush(forcedGet, state, true)) {
          cursor = head.next;
          fresh = true;
        } else {
          cursor = backtrack();
          if (cursor === null) return explain(key, ops, names, best, dropped, initial);
        }
        continue;
      }
    }
    if (cursor === null) {
      // Unreachable while a finite return event remains; kept as a guard.
      throw new Error('checkLinearizable: internal error (event list exhausted)');
    }
    if (cursor.isCall) {
      const next = step(state, ops[cursor.opIdx] as KeyOp);
      if (next !== undefined && tryPush(cursor, next, false)) {
        cursor = head.next;
        fresh = true;
      } else {
        cursor = cursor.next;
      }
    } else {
      cursor = backtrack();
      if (cursor === null) return explain(key, ops, names, best, dropped, initial);
    }
  }
}

/** Applies an op to the register; returns the new state, or undefined if the op's output is inconsistent. */
function step(state: number, o: KeyOp): number | undefined {
  switch (o.kind) {
    case 'put':
      return o.val;
    case 'delete':
      // With "absent" observed, state 0 is exactly absent (UNREAD values are all present).
      if (o.existed !== undefined && o.existed !== (state !== 0)) return undefined;
      return o.val;
    case 'get':
      return o.val === state ? state : undefined;
  }
}

function describeValue(v: string | undefined): string {
  return v === undefined ? '<absent>' : JSON.stringify(v);
}

/** One-line description of an op, e.g. `c2 get("k") -> "v" [12, 20]`. */
function describeOp(h: HistoryOp): string {
  const span = `[${h.call}, ${h.ret === undefined ? '?' : h.ret}]`;
  const k = JSON.stringify(h.op.key);
  switch (h.op.kind) {
    case 'put':
      return `c${h.client} put(${k}, ${JSON.stringify(h.op.value)}) ${span}`;
    case 'delete': {
      const out = h.ret === undefined || h.existed === undefined ? '' : h.existed ? ' -> existed' : ' -> absent';
      return `c${h.client} delete(${k})${out} ${span}`;
    }
    case 'get':
      return `c${h.client} get(${k}) -> ${h.ret === undefined ? '?' : describeValue(h.output)} ${span}`;
  }
}

function pushLimited(lines: string[], items: string[], indent: string): void {
  const shown = items.slice(0, EXPLANATION_MAX_LINES);
  for (const s of shown) lines.push(indent + s);
  if (items.length > shown.length) lines.push(`${indent}... ${items.length - shown.length} more`);
}

/** Builds the failure explanation from the longest linearizable prefix found. */
function explain(
  key: string,
  ops: KeyOp[],
  names: Array<string | undefined>,
  best: number[],
  dropped: number,
  initial: number,
): string {
  const valueName = (id: number): string => (id === UNREAD ? 'a value no get returns' : describeValue(names[id]));
  const lines: string[] = [];
  lines.push(
    `key ${JSON.stringify(key)}: no linearization of ${ops.length} ops` +
      (dropped > 0 ? ` (${dropped} unknown-outcome ops dropped as unobservable)` : '') +
      '.',
  );
  let state = initial;
  const inPrefix = new Set(best);
  for (const i of best) state = step(state, ops[i] as KeyOp) ?? state;
  lines.push(`Longest linearizable prefix found (${best.length} ops, in linearization order):`);
  pushLimited(
    lines,
    best.map((i) => describeOp((ops[i] as KeyOp).h)),
    '  ',
  );
  const rest = ops.map((_, i) => i).filter((i) => !inPrefix.has(i));
  const minRet = rest.reduce((m, i) => Math.min(m, (ops[i] as KeyOp).ret), Infinity);
  const candidates = rest.filter((i) => (ops[i] as KeyOp).call <= minRet);
  lines.push(`After it the value is ${valueName(state)}; none of the next possible ops leads to a linearization:`);
  pushLimited(
    lines,
    candidates.map((i) => {
      const o = ops[i] as KeyOp;
      const why =
        step(state, o) === undefined
          ? o.kind === 'delete'
            ? `finds the key ${o.existed ? 'present' : 'absent'} but the value is ${valueName(state)}`
            : `reads ${valueName(o.val)} but the value is ${valueName(state)}`
          : 'applies, but every continuation fails';
      return `${describeOp(o.h)}: ${why}`;
    }),
    '  ',
  );
  lines.push('All checked ops for this key, by call time:');
  const sorted = [...ops].sort((a, b) => a.call - b.call || a.ret - b.ret);
  pushLimited(
    lines,
    sorted.map((o) => describeOp(o.h)),
    '  ',
  );
  return lines.join('\n');
}
