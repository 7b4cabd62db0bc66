import { inspect } from 'node:util';
import type { CoreSnapshot, Entry } from '../core/message.js';
import type { Storage } from '../core/storage.js';
import { seededRandom } from '../sim/random.js';
import { difference } from './deep-equal.js';
import { entries, ModelStorage, randomBatch, type SuiteTransition } from './storage-workload.js';

/**
 * How the conformance suite reaches one storage under test, fresh and empty, and that same
 * storage again as a restarted replica would find it.
 */
export interface StorageUnderTest {
  /**
   * Returns the storage. The suite calls it once when a check starts and again at every
   * "restart": each call must give a storage holding everything the earlier ones saved, as a
   * replica restarted on the same data would find it (an in-memory storage may return the same
   * instance every time). Before each new call, and at the end of the check, the suite calls
   * `close()` on the storage it has, if that storage has a `close` method, as `replica.stop()`
   * does: an instance that `open` returns again must stay usable after its `close()`.
   */
  open(): Storage<unknown, unknown> | Promise<Storage<unknown, unknown>>;
  /** Releases what this fixture created (a temporary directory...). Called last, even after a failure. */
  cleanup?(): void | Promise<void>;
}

/** Options of {@link storageConformanceChecks}. */
export interface StorageConformanceOptions {
  /**
   * Seed of the random workload (the check that compares the storage with a reference model over
   * random batches): the same seed writes the same batches, so a failure replays.
   * @defaultValue 12345
   */
  seed?: number;
  /**
   * How many random batches the random workload saves; it reopens the storage after every 100th
   * and at the end.
   * @defaultValue 300
   */
  batches?: number;
}

/** One rule of the Storage contract, checked against a fresh storage. */
export interface StorageConformanceCheck {
  /** What the storage must do, as a sentence (a good test name). */
  readonly name: string;
  /**
   * Creates a fresh storage, runs the check and releases the storage. Resolves if the storage
   * follows the rule; otherwise rejects with a {@link StorageConformanceError}. It does not use
   * `this`, so it can be handed to a test runner as is: `it(check.name, check.run)`.
   */
  run(): Promise<void>;
}

/**
 * Thrown by {@link StorageConformanceCheck.run} when the storage breaks a rule of the Storage
 * contract: the message names the check, what was compared and, for data, the first place where
 * what the storage gave differs from what it was given (for example `entries[2].config` or
 * `snapshot.members`). A storage that throws (or whose fixture throws) during a check also fails it
 * with this error, the thrown value as its `cause`.
 */
export class StorageConformanceError extends Error {
  /** Always `'StorageConformanceError'`. */
  override readonly name = 'StorageConformanceError';
  /** The name of the failed check ({@link StorageConformanceCheck.name}). */
  readonly check: string;
  /** What was compared (for example "load() after a reopen") or what threw. */
  readonly what: string;
  /** Where in it the first difference is (`''` for the whole value, or when the storage threw). */
  readonly path: string;
  /** What the contract requires at `path`. */
  readonly expected: unknown;
  /** What the storage gave at `path`. */
  readonly actual: unknown;

  /**
   * @param check - The name of the failed check.
   * @param what - What was compared, or what threw.
   * @param path - Where the first difference is.
   * @param expected - What the contract requires there.
   * @param actual - What the storage gave there.
   * @param options - `cause`: what the storage threw, if it threw.
   */
  constructor(
    check: string,
    what: string,
    path: string,
    expected: unknown,
    actual: unknown,
    options?: { cause?: unknown },
  ) {
    super(describe(check, what, path, expected, actual, options), options);
    this.check = check;
    this.what = what;
    this.path = path;
    this.expected = expected;
    this.actual = actual;
  }
}

function describe(
  check: string,
  what: string,
  path: string,
  expected: unknown,
  actual: unknown,
  options?: { cause?: unknown },
): string {
  const show = (v: unknown): string =>
    inspect(v, { depth: 4, breakLength: Infinity, maxArrayLength: 12, maxStringLength: 80 });
  if (options && 'cause' in options) return `Storage contract, "${check}": ${what} threw ${show(options.cause)}`;
  const at = path === '' ? '' : ` at ${path}`;
  return `Storage contract, "${check}": ${what}${at}: expected ${show(expected)}, got ${show(actual)}`;
}

type AnyStorage = Storage<unknown, unknown>;
/** What load() returned, before the checks: any of its fields may be missing or wrong. */
type Loaded = { term?: unknown; votedFor?: unknown; snapshot?: { lastIncludedIndex?: unknown }; entries?: unknown };

/** A check's view of the storage under test: the current instance, reopening, and the assertions. */
class Session {
  storage!: AnyStorage;
  constructor(
    private readonly check: string,
    private readonly fixture: StorageUnderTest,
  ) {}

  async open(): Promise<AnyStorage> {
    this.storage = await this.fixture.open();
    return this.storage;
  }

  /** Closes the current instance (if it can be closed) and opens the storage again: a restart. */
  async reopen(): Promise<AnyStorage> {
    await this.close();
    return this.open();
  }

  async close(): Promise<void> {
    const s = this.storage as (AnyStorage & { close?: unknown }) | undefined;
    if (typeof s?.close === 'function') await (s.close as () => unknown).call(s);
  }

  /** `load()` of a freshly reopened storage; its fields are checked by the caller. */
  async reload(): Promise<Loaded> {
    const state: unknown = await (await this.reopen()).load();
    if (typeof state !== 'object' || state === null) {
      throw new StorageConformanceError(this.check, 'load() after a reopen', '', 'an object', state);
    }
    return state;
  }

  /**
   * Deep equality where a property set to undefined counts as absent (vitest's toEqual). `root`
   * names the compared value in the path of a difference (`entries` gives `entries[2].config`).
   */
  equal(actual: unknown, expected: unknown, what: string, root = ''): void {
    const d = difference(actual, expected, false, root);
    if (d) throw new StorageConformanceError(this.check, what, d.path, d.expected, d.actual);
  }

  /** Deep equality counting every property, undefined ones included, and prototypes (toStrictEqual). */
  strictEqual(actual: unknown, expected: unknown, what: string, root = ''): void {
    const d = difference(actual, expected, true, root);
    if (!d) return;
    // `undefined` and a missing property print alike: say which one it is.
    const note = { actual: ' (the property is missing)', expected: ' (a property that should not be there)' };
    const where = what + (d.absent ? note[d.absent] : '');
    throw new StorageConformanceError(this.check, where, d.path, d.expected, d.actual);
  }
}

type Tr = SuiteTransition;
type CheckBody = (s: Session) => Promise<void>;

/** The rules, each with its name. `options` are already validated. */
function rules(options: Required<StorageConformanceOptions>): Array<[string, CheckBody]> {
  return [
    [
      'loads an empty state',
      async (s) => {
        s.equal(await s.storage.load(), { term: 0, votedFor: undefined, snapshot: undefined, entries: [] }, 'load()');
      },
    ],

    [
      'round-trips the hard state, with and without a vote',
      async (s) => {
        await s.storage.load();
        await s.storage.save({ hardState: { term: 3, votedFor: 2 } });
        const first = await s.reload();
        s.equal([first.term, first.votedFor], [3, 2], 'load() after a reopen: [term, votedFor]');
        const again = await s.reopen();
        await again.load();
        await again.save({ hardState: { term: 4, votedFor: undefined } });
        const second = await s.reload();
        s.strictEqual(second.term, 4, 'load() after a reopen', 'term');
        s.strictEqual(second.votedFor, undefined, 'load() after a reopen', 'votedFor');
        s.equal(second.entries, [], 'load() after a reopen', 'entries');
      },
    ],

    [
      'appends entries across batches',
      async (s) => {
        await s.storage.load();
        await s.storage.save({ append: entries(1, 3, 1) });
        await s.storage.save({ append: entries(4, 5, 1) });
        s.equal((await s.reload()).entries, entries(1, 5, 1), 'load() after a reopen', 'entries');
      },
    ],

    [
      'applies hardState, truncateFrom and append of one batch in that order',
      async (s) => {
        await s.storage.load();
        await s.storage.save({ hardState: { term: 1, votedFor: 1 }, append: entries(1, 5, 1) });
        await s.storage.save({ hardState: { term: 2, votedFor: 3 }, truncateFrom: 3, append: entries(3, 4, 2) });
        const want = { term: 2, votedFor: 3, snapshot: undefined, entries: [...entries(1, 2, 1), ...entries(3, 4, 2)] };
        s.equal(await s.reload(), want, 'load() after a reopen');
      },
    ],

    [
      'truncates without appending, and truncating everything works',
      async (s) => {
        await s.storage.load();
        await s.storage.save({ append: entries(1, 5, 1) });
        await s.storage.save({ truncateFrom: 4 });
        s.equal((await s.reload()).entries, entries(1, 3, 1), 'load() after truncateFrom: 4 and a reopen', 'entries');
        const r = await s.reopen();
        await r.load();
        await r.save({ truncateFrom: 1, append: entries(1, 1, 2) });
        s.equal((await s.reload()).entries, entries(1, 1, 2), 'load() after truncateFrom: 1 and a reopen', 'entries');
      },
    ],

    [
      'keeps a snapshot and returns only the entries after it',
      async (s) => {
        await s.storage.load();
        await s.storage.save({ append: entries(1, 10, 1) });
        const snap = { lastIncludedIndex: 4, lastIncludedTerm: 1, data: { sum: 10, list: [1, 2, 3, 4] } };
        await s.storage.save({ snapshot: snap });
        let state = await s.reload();
        s.equal(state.snapshot, snap, 'load() after a reopen', 'snapshot');
        s.equal(state.entries, entries(5, 10, 1), 'load() after a reopen', 'entries');
        // Then the log goes on after the snapshot.
        const r = await s.reopen();
        await r.load();
        await r.save({ append: entries(11, 12, 2) });
        state = await s.reload();
        const all = [...entries(5, 10, 1), ...entries(11, 12, 2)];
        s.equal(state.entries, all, 'load() after appending after the snapshot', 'entries');
      },
    ],

    [
      'applies the snapshot after the append of the same batch',
      async (s) => {
        await s.storage.load();
        await s.storage.save({ append: entries(1, 3, 1) });
        const snapshot = { lastIncludedIndex: 4, lastIncludedTerm: 2, data: 'four' };
        await s.storage.save({ truncateFrom: 2, append: entries(2, 6, 2), snapshot });
        const state = await s.reload();
        const want = { lastIncludedIndex: 4, lastIncludedTerm: 2, data: 'four' };
        s.equal(state.snapshot, want, 'load() after a reopen', 'snapshot');
        s.equal(state.entries, entries(5, 6, 2), 'load() after a reopen', 'entries');
      },
    ],

    [
      'accepts a snapshot beyond the end of the log (installed from a leader)',
      async (s) => {
        await s.storage.load();
        await s.storage.save({ append: entries(1, 3, 1) });
        const snapshot = { lastIncludedIndex: 20, lastIncludedTerm: 4, data: null };
        await s.storage.save({ hardState: { term: 5, votedFor: undefined }, snapshot });
        let state = await s.reload();
        s.equal(state.entries, [], 'load() after a reopen', 'entries');
        s.strictEqual(state.snapshot?.lastIncludedIndex, 20, 'load() after a reopen', 'snapshot.lastIncludedIndex');
        const r = await s.reopen();
        await r.load();
        await r.save({ append: entries(21, 22, 5) });
        state = await s.reload();
        s.equal(state.entries, entries(21, 22, 5), 'load() after appending after the snapshot', 'entries');
      },
    ],

    [
      'keeps a snapshot whose data is undefined or falsy',
      async (s) => {
        await s.storage.load();
        for (const data of [undefined, null, 0, '', false]) {
          const r = await s.reopen();
          await r.load();
          await r.save({ snapshot: { lastIncludedIndex: 1, lastIncludedTerm: 1, data } });
          const state = await s.reload();
          const want = { lastIncludedIndex: 1, lastIncludedTerm: 1, data };
          s.strictEqual(state.snapshot, want, `load() after saving data ${inspect(data)} and a reopen`, 'snapshot');
        }
      },
    ],

    [
      'stores every field of an entry as given',
      async (s) => {
        await s.storage.load();
        const nested = { list: [1, 'two', null, { deep: true }] };
        const odd = [
          { index: 1, term: 1, kind: 'noop', transition: { id: 'noop' } },
          { index: 2, term: 1, kind: 'transition', transition: { id: 7, nested, text: 'ünïcødé \u2028 "quoted"' } },
          { index: 3, term: 1, kind: 'config', transition: { id: 'cfg' }, config: [1, 2, 3] },
        ] as Entry<Tr>[];
        await s.storage.save({ append: odd });
        s.equal((await s.reload()).entries, odd, 'load() after a reopen', 'entries');
      },
    ],

    [
      'keeps every field the Storage types name (noop, config, members) through compactions and reopens',
      async (s) => {
        await s.storage.load();
        const noop = { id: 'noop' };
        const log: Entry<Tr>[] = [
          { index: 1, term: 1, kind: 'noop', transition: noop },
          { index: 2, term: 1, kind: 'transition', transition: { id: 'a' } },
          { index: 3, term: 1, kind: 'config', transition: noop, config: [1, 2, 3, 4] },
          { index: 4, term: 2, kind: 'noop', transition: noop },
          { index: 5, term: 2, kind: 'config', transition: noop, config: [1, 2, 3, 4, 5] },
          { index: 6, term: 2, kind: 'transition', transition: { id: 'b' } },
        ];
        await s.storage.save({ hardState: { term: 2, votedFor: 1 }, append: log });
        s.strictEqual((await s.reload()).entries, log, 'load() after a reopen', 'entries');
        // A compaction covers the first configuration entry: the snapshot carries its members.
        let r = await s.reopen();
        await r.load();
        const first: CoreSnapshot<unknown> = {
          lastIncludedIndex: 4,
          lastIncludedTerm: 2,
          data: { upTo: 4 },
          members: [1, 2, 3, 4],
        };
        await r.save({ snapshot: first });
        let state = await s.reload();
        s.strictEqual(state.snapshot, first, 'load() after a compaction and a reopen', 'snapshot');
        s.strictEqual(state.entries, log.slice(4), 'load() after a compaction and a reopen', 'entries');
        // One batch appends a configuration entry and compacts past the one before it.
        r = await s.reopen();
        await r.load();
        const more: Entry<Tr>[] = [
          { index: 7, term: 2, kind: 'transition', transition: { id: 'c' } },
          { index: 8, term: 2, kind: 'config', transition: noop, config: [2, 3, 4, 5] },
        ];
        const second: CoreSnapshot<unknown> = {
          lastIncludedIndex: 7,
          lastIncludedTerm: 2,
          data: null,
          members: [1, 2, 3, 4, 5],
        };
        await r.save({ append: more, snapshot: second });
        state = await s.reload();
        const want = { term: 2, votedFor: 1, snapshot: second, entries: [more[1]] };
        s.strictEqual(state, want, 'load() after appending and compacting in one batch, and a reopen');
      },
    ],

    [
      'matches the reference model over many random batches, before and after reopening',
      async (s) => {
        await s.storage.load();
        const model = new ModelStorage();
        const rand = seededRandom(options.seed);
        let storage = s.storage;
        for (let seq = 1; seq <= options.batches; seq++) {
          const batch = randomBatch(model, rand, seq);
          model.apply(batch);
          await storage.save(batch);
          if (seq % 100 === 0) {
            storage = await s.reopen();
            s.equal(
              await storage.load(),
              model.state(),
              `load() after batch ${seq} (seed ${options.seed}) and a reopen`,
            );
          }
        }
        s.equal(await s.reload(), model.state(), `load() after all ${options.batches} batches (seed ${options.seed})`);
      },
    ],
  ];
}

/**
 * Runs one check on a fresh fixture, then closes and cleans up whatever happened; every failure,
 * and anything the storage throws, becomes a StorageConformanceError.
 */
async function runCheck(name: string, body: CheckBody, fresh: () => StorageUnderTest | Promise<StorageUnderTest>) {
  let fixture: StorageUnderTest;
  try {
    fixture = await fresh();
  } catch (cause) {
    throw new StorageConformanceError(name, 'creating the storage', '', undefined, undefined, { cause });
  }
  const session = new Session(name, fixture);
  let failure: unknown;
  try {
    await session.open();
    await body(session);
  } catch (e) {
    const cause = { cause: e };
    failure =
      e instanceof StorageConformanceError
        ? e
        : new StorageConformanceError(name, 'the storage', '', undefined, undefined, cause);
  }
  // Release everything, and report the first problem: the check's own, else closing or cleaning up.
  try {
    await session.close();
  } catch (cause) {
    failure ??= new StorageConformanceError(name, 'close()', '', undefined, undefined, { cause });
  }
  try {
    await fixture.cleanup?.();
  } catch (cause) {
    failure ??= new StorageConformanceError(name, 'cleanup()', '', undefined, undefined, { cause });
  }
  if (failure !== undefined) throw failure;
}

/**
 * The Storage conformance suite: the rules every {@link Storage} must follow, as checks that run
 * on their own, in any test runner. Run it against your own storage: it is the suite tickraft
 * runs against `MemoryStorage` and `FileStorage`. It saves and loads batches shaped as a replica
 * writes them (entries of every `kind`, `config`, snapshots with and without `members`, data that
 * is `undefined` or falsy, truncations, compactions, a snapshot beyond the log) and reopens the
 * storage in between, checking that `load()` gives back exactly what was saved. Transitions are
 * plain objects with an `id`, snapshot data any plain value: a storage must keep them as given.
 *
 * @param fresh - Creates a fresh, empty storage for one check (each check calls it once) and says
 *   how to reopen it; see {@link StorageUnderTest}.
 * @param options - The seed and length of the random workload.
 * @returns The checks, in a fixed order; each `run()` rejects with {@link StorageConformanceError}
 *   on the first rule the storage breaks.
 * @throws TypeError if `options.seed` is not a safe integer or `options.batches` not a positive integer.
 *
 * @example With vitest or jest; with node:test, the same loop calls test
 * ```ts
 * import { storageConformanceChecks } from 'tickraft/testing';
 *
 * describe('MyStorage follows the Storage contract', () => {
 *   const checks = storageConformanceChecks(async () => {
 *     const db = await createTestDatabase();
 *     return { open: () => new MyStorage(db.url), cleanup: () => db.drop() };
 *   });
 *   for (const check of checks) it(check.name, check.run);
 * });
 * ```
 */
export function storageConformanceChecks(
  fresh: () => StorageUnderTest | Promise<StorageUnderTest>,
  options: StorageConformanceOptions = {},
): StorageConformanceCheck[] {
  const seed = options.seed ?? 12345;
  const batches = options.batches ?? 300;
  if (!Number.isSafeInteger(seed)) throw new TypeError(`seed must be a safe integer, got ${String(seed)}`);
  if (!Number.isSafeInteger(batches) || batches < 1) {
    throw new TypeError(`batches must be a positive integer, got ${String(batches)}`);
  }
  return rules({ seed, batches }).map(([name, body]) => ({ name, run: () => runCheck(name, body, fresh) }));
}

/**
 * Runs every check of {@link storageConformanceChecks} in turn, for a runner-less script or a
 * single test: resolves if the storage passes them all, rejects with the first
 * {@link StorageConformanceError}.
 *
 * @param fresh - As for {@link storageConformanceChecks}.
 * @param options - As for {@link storageConformanceChecks}.
 *
 * @example
 * ```ts
 * import { MemoryStorage } from 'tickraft';
 * import { checkStorageConformance } from 'tickraft/testing';
 *
 * await checkStorageConformance(() => {
 *   const storage = new MemoryStorage();
 *   return { open: () => storage }; // in memory, a restart finds the same instance
 * });
 * ```
 */
export async function checkStorageConformance(
  fresh: () => StorageUnderTest | Promise<StorageUnderTest>,
  options?: StorageConformanceOptions,
): Promise<void> {
  for (const check of storageConformanceChecks(fresh, options)) await check.run();
}
