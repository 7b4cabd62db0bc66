// Helper program for file.test.ts: opens a FileStorage in another process.
//   node lock-child.js <dir> try   -> prints {"ok":true} or {"error":name,"pid":...} and exits
//   node lock-child.js <dir> hold  -> opens, saves one entry, prints "locked", waits to be killed
import { FileStorage, StorageLockedError } from '../../src/file.js';

const [dir, mode] = process.argv.slice(2);
if (dir === undefined) throw new Error('usage: lock-child <dir> try|hold');
const storage = new FileStorage<{ id: string }, unknown>(dir);
try {
  await storage.load();
} catch (err) {
  const e = err as Error;
  process.stdout.write(
    JSON.stringify({
      error: e.name,
      message: e.message,
      pid: err instanceof StorageLockedError ? err.pid : undefined,
    }) + '\n',
  );
  process.exit(0);
}
if (mode === 'hold') {
  await storage.save({
    hardState: { term: 7, votedFor: 1 },
    append: [{ index: 1, term: 7, kind: 'transition', transition: { id: 'held' } }],
  });
  process.stdout.write('locked\n');
  // Held until killed; never outlive the parent (stdin closes when it dies), nor run for long.
  process.stdin.on('end', () => process.exit(2)).resume();
  setTimeout(() => process.exit(3), 30_000);
} else {
  process.stdout.write(JSON.stringify({ ok: true }) + '\n');
  await storage.close();
}
