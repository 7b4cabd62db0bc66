// The Storage conformance suite (tickraft/testing) must fail a storage that breaks the contract,
// with a StorageConformanceError naming the rule and the place where the data differs: broken
// storages, each wrong in one way, and the checks each one must fail (and only those).
import { describe, expect, it } from 'vitest';
import type { Entry, Storage, StorageBatch } from '../../src/index.js';
import { MemoryStorage } from '../../src/storage/memory.js';
import {
  checkStorageConformance,
  StorageConformanceError,
  storageConformanceChecks,
  type StorageUnderTest,
} from '../../src/testing.js';

type Batch = StorageBatch<unknown, unknown>;

/** A MemoryStorage that passes every batch through `mangle` first: wrong in exactly that way. */
class Mangling implements Storage<unknown, unknown> {
  private readonly inner = new MemoryStorage<unknown, unknown>();
  constructor(private readonly mangle: (batch: Batch) => Batch) {}
  load() {
    return this.inner.load();
  }
  save(batch: Batch) {
    return this.inner.save(this.mangle(batch));
  }
}

function fixture(mangle: (batch: Batch) => Batch): () => StorageUnderTest {
  return () => {
    const storage = new Mangling(mangle);
    return { open: () => storage };
  };
}

const EVERY_FIELD = 'keeps every field the Storage types name (noop, config, members) through compactions and reopens';
const RANDOM = 'matches the reference model over many random batches, before and after reopening';

/** Runs every check; the names of those that failed, each failure checked to be a StorageConformanceError. */
async function failures(fresh: () => StorageUnderTest): Promise<Map<string, StorageConformanceError>> {
  const failed = new Map<string, StorageConformanceError>();
  for (const check of storageConformanceChecks(fresh)) {
    const err = await check.run().then(
      () => undefined,
      (e: unknown) => e,
    );
    if (err === undefined) continue;
    expect(err).toBeInstanceOf(StorageConformanceError);
    const c = err as StorageConformanceError;
    expect(c.check).toBe(check.name);
    expect(c.message).toContain(check.name);
    failed.set(check.name, c);
  }
  return failed;
}

describe('the Storage conformance suite fails a broken storage', () => {
  it('passes MemoryStorage through the same wrapper, unmangled (the wrapper itself is sound)', async () => {
    expect(await failures(fixture((b) => b))).toEqual(new Map());
    await checkStorageConformance(fixture((b) => b));
  });

  it("fails a storage that drops a snapshot's members, at snapshot.members", async () => {
    const dropMembers = (b: Batch): Batch => {
      if (!b.snapshot) return b;
      const { members: _, ...rest } = b.snapshot;
      return { ...b, snapshot: rest };
    };
    const failed = await failures(fixture(dropMembers));
    expect([...failed.keys()]).toEqual([EVERY_FIELD, RANDOM]);
    const err = failed.get(EVERY_FIELD)!;
    expect(err.path).toBe('snapshot.members');
    expect(err.expected).toEqual([1, 2, 3, 4]);
    expect(err.actual).toBeUndefined();
    const where = 'load() after a compaction and a reopen (the property is missing) at snapshot.members';
    expect(err.message).toContain(`"${EVERY_FIELD}": ${where}: `);
    expect(err.message).toContain('expected [ 1, 2, 3, 4 ], got undefined');
    expect(failed.get(RANDOM)!.path).toMatch(/^snapshot\.members$/);
    await expect(checkStorageConformance(fixture(dropMembers))).rejects.toBeInstanceOf(StorageConformanceError);
  });

  it("fails a storage that drops a configuration entry's config (and keeps its kind)", async () => {
    const withoutConfig = ({ config: _, ...rest }: Entry<unknown>) => rest as Entry<unknown>;
    const dropConfig = (b: Batch): Batch => (b.append ? { ...b, append: b.append.map(withoutConfig) } : b);
    const failed = await failures(fixture(dropConfig));
    expect([...failed.keys()]).toEqual(['stores every field of an entry as given', EVERY_FIELD, RANDOM]);
    expect(failed.get('stores every field of an entry as given')!.path).toBe('entries[2].config');
    expect(failed.get(EVERY_FIELD)!.path).toBe('entries[2].config');
  });

  it('fails a storage that turns a snapshot whose data is undefined into one whose data is null', async () => {
    const nullData = (b: Batch): Batch =>
      b.snapshot && b.snapshot.data === undefined ? { ...b, snapshot: { ...b.snapshot, data: null } } : b;
    const failed = await failures(fixture(nullData));
    expect([...failed.keys()]).toEqual(['keeps a snapshot whose data is undefined or falsy']);
    expect(failed.get('keeps a snapshot whose data is undefined or falsy')!.path).toBe('snapshot.data');
  });

  it('fails a storage that ignores truncateFrom', async () => {
    const noTruncate = (b: Batch): Batch => ({ ...b, truncateFrom: undefined });
    const failed = await failures(fixture(noTruncate));
    // (Where an append at the same index follows, MemoryStorage's append overwrites what was kept.)
    expect([...failed.keys()]).toEqual(['truncates without appending, and truncating everything works']);
    expect(failed.get('truncates without appending, and truncating everything works')!.path).toBe('entries.length');
  });

  it('turns a storage that throws into a StorageConformanceError with the thrown error as cause', async () => {
    const boom = new Error('disk on fire');
    const [first] = storageConformanceChecks(() => ({
      open: () => ({ load: () => Promise.reject(boom), save: async () => {} }),
    }));
    const err = (await first!.run().catch((e: unknown) => e)) as StorageConformanceError;
    expect(err).toBeInstanceOf(StorageConformanceError);
    expect(err.cause).toBe(boom);
    expect(err.message).toContain('disk on fire');
  });

  it('closes every instance it opened and cleans up, also after a failure', async () => {
    const events: string[] = [];
    let opened = 0;
    const fresh = (): StorageUnderTest => {
      const inner = new Mangling((b) => ({ ...b, hardState: undefined }));
      return {
        open: () => {
          const n = ++opened;
          events.push(`open ${n}`);
          return Object.assign(Object.create(inner) as Mangling, { close: async () => void events.push(`close ${n}`) });
        },
        cleanup: () => void events.push('cleanup'),
      };
    };
    const round = storageConformanceChecks(fresh)[1]!;
    expect(round.name).toBe('round-trips the hard state, with and without a vote');
    await expect(round.run()).rejects.toBeInstanceOf(StorageConformanceError);
    expect(events).toEqual(['open 1', 'close 1', 'open 2', 'close 2', 'cleanup']);
  });

  it('refuses a seed or a length of the random workload that is not an integer', () => {
    expect(() =>
      storageConformanceChecks(
        fixture((b) => b),
        { seed: 1.5 },
      ),
    ).toThrow(TypeError);
    expect(() =>
      storageConformanceChecks(
        fixture((b) => b),
        { batches: 0 },
      ),
    ).toThrow(TypeError);
  });
});
