// Small file-system helpers of FileStorage, SharedLog and the directory lock: a full write, a
// directory fsync, an unlink that tolerates absence, a `mkdir -p` that terminates, a cut, an atomic write, and a file
// opened for one use and always closed.
import { existsSync, mkdirSync } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import * as path from 'node:path';

/** Writes all of `buf` at `position`, however many writes that takes. */
export async function writeAll(handle: FileHandle, buf: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesWritten } = await handle.write(buf, done, buf.length - done, position + done);
    done += bytesWritten;
  }
}

/** Opens `file` with `flags`, runs `use` on it, and closes it whatever `use` does. */
export async function withFile<R>(file: string, flags: string, use: (handle: FileHandle) => Promise<R>): Promise<R> {
  const handle = await open(file, flags);
  try {
    return await use(handle);
  } finally {
    await handle.close();
  }
}

/** Makes a directory's entries (a created, renamed or deleted file) durable. */
export async function syncDir(dir: string): Promise<void> {
  await withFile(dir, 'r', (handle) => handle.sync());
}

/** Deletes a file; a file already gone is not an error. */
export async function unlinkIfPresent(file: string): Promise<void> {
  try {
    await unlink(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

/**
 * `mkdir -p`, without Node's recursive mkdir: on Node 20 it loops forever, synchronously (so
 * not even a signal gets through), where mkdir fails with ENOENT under a parent that exists,
 * as in /proc. Here that ENOENT is thrown.
 */
export function makeDirectory(dir: string): void {
  try {
    mkdirSync(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return;
    const parent = path.dirname(dir);
    if (code !== 'ENOENT' || parent === dir || existsSync(parent)) throw err;
    makeDirectory(parent);
    makeDirectory(dir); // the parent exists now: this ends
  }
}

/** Cuts `file` to `length` bytes (a torn tail), durably if `fsync`. */
export async function truncateFile(file: string, length: number, fsync: boolean): Promise<void> {
  await withFile(file, 'r+', async (handle) => {
    await handle.truncate(length);
    if (fsync) await handle.sync();
  });
}

/** Writes `text` to `file` aside and renames it into place, so that it is never seen half written. */
export async function writeFileAtomic(file: string, text: string, fsync: boolean): Promise<void> {
  const tmp = `${file}.tmp`;
  await withFile(tmp, 'w', async (handle) => {
    await handle.writeFile(text);
    if (fsync) await handle.sync();
  });
  await rename(tmp, file);
  if (fsync) await syncDir(path.dirname(file));
}
