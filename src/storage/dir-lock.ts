// The directory lock of FileStorage: one live FileStorage per directory, across processes (a
// LOCK file naming its owner) and within one (a registry shared by every copy of this module).
// A lock left by a process that has died is taken over.
import { readFileSync, realpathSync } from 'node:fs';
import { link, readFile, rename, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { LOCK_FILE } from './file-format.js';
import { StorageLockedError } from './file-errors.js';
import { makeDirectory, unlinkIfPresent } from './fs-helpers.js';

interface LockOwner {
  pid: number;
  /** The process's start time (Linux), so that a recycled pid is not mistaken for the owner. */
  start: string | undefined;
  token: string;
}

/** A held lock on a directory. */
export interface DirLock {
  /** The directory's real path (symbolic links resolved): what the lock is on. */
  readonly realDir: string;
  /** Gives the lock up; only the first call does anything. */
  release(): Promise<void>;
}

/**
 * Creates `dir` if missing and locks it. Rejects with {@link StorageLockedError} if another live
 * FileStorage, in this process or another, holds it.
 */
export async function lockDirectory(dir: string): Promise<DirLock> {
  makeDirectory(dir);
  const realDir = realpathSync(dir);
  // Claimed synchronously, before any await, so two loads racing in one process cannot both
  // pass; the lock file then settles the question between processes.
  const held = openDirs();
  if (held.has(realDir)) throw new StorageLockedError(realDir, process.pid);
  const me: LockOwner = { pid: process.pid, start: processStart(process.pid), token: randomBytes(8).toString('hex') };
  held.set(realDir, me.token);
  try {
    await acquireLockFile(realDir, me);
  } catch (err) {
    held.delete(realDir);
    throw err;
  }
  let released = false;
  return {
    realDir,
    async release(): Promise<void> {
      if (released) return;
      released = true;
      const lockPath = path.join(realDir, LOCK_FILE);
      try {
        if ((await readLock(lockPath))?.token === me.token) await unlinkIfPresent(lockPath);
      } finally {
        if (openDirs().get(realDir) === me.token) openDirs().delete(realDir);
      }
    },
  };
}

/** Directories open in this process, shared by every copy of this module that gets loaded. */
function openDirs(): Map<string, string> {
  const g = globalThis as { [OPEN_DIRS]?: Map<string, string> };
  return (g[OPEN_DIRS] ??= new Map());
}
const OPEN_DIRS = Symbol.for('tickraft.FileStorage.openDirs');

async function acquireLockFile(dir: string, me: LockOwner): Promise<void> {
  const lockPath = path.join(dir, LOCK_FILE);
  // Written aside and hard-linked into place, so LOCK never exists without its content and a
  // half-created lock cannot be mistaken for a stale one.
  const mine = `${lockPath}.${me.pid}.${me.token}`;
  await writeFile(mine, JSON.stringify(me));
  try {
    for (let attempt = 0; attempt < 10; attempt++) {
      try {
        await link(mine, lockPath);
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const holder = await readLock(lockPath);
      if (holder === null) continue; // vanished meanwhile: try again
      if (holder !== undefined && isAlive(holder)) throw new StorageLockedError(dir, holder.pid);
      // Stale. Move it aside rather than unlink it, so that of two processes taking over at
      // once only one removes it, and neither can remove a fresh lock the other just made.
      const aside = `${lockPath}.stale.${me.pid}.${me.token}`;
      try {
        await rename(lockPath, aside);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw err;
      }
      const moved = await readLock(aside);
      if (moved !== null && moved !== undefined && moved.token !== holder?.token && isAlive(moved)) {
        // We moved a lock a live process created after we read the stale one: put it back.
        await link(aside, lockPath).catch(() => undefined);
        await unlinkIfPresent(aside);
        throw new StorageLockedError(dir, moved.pid);
      }
      await unlinkIfPresent(aside);
    }
    throw new StorageLockedError(dir, undefined);
  } finally {
    await unlinkIfPresent(mine);
  }
}

/** The owner recorded in a lock file; undefined if unreadable (stale), null if the file is gone. */
async function readLock(file: string): Promise<LockOwner | undefined | null> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  try {
    const v = JSON.parse(text) as Partial<LockOwner>;
    if (typeof v.pid === 'number' && typeof v.token === 'string')
      return { pid: v.pid, start: v.start ?? undefined, token: v.token };
  } catch {
    // fall through: a lock file cut short by a machine crash
  }
  return undefined;
}

function isAlive(owner: LockOwner): boolean {
  // Our own pid with a token this process does not hold: a previous incarnation that had the
  // same pid (containers restart at the same pids), since every live lock here is in openDirs.
  if (owner.pid === process.pid) return [...openDirs().values()].includes(owner.token);
  try {
    process.kill(owner.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  const stat = processStat(owner.pid);
  if (stat === undefined) return true;
  // A zombie has exited and only awaits its parent's wait(): its lock is as stale as a corpse's.
  if (stat[0] === 'Z') return false;
  return owner.start === undefined || stat[19] === owner.start;
}

/** Start time of a process in clock ticks since boot (Linux /proc), to tell recycled pids apart. */
function processStart(pid: number): string | undefined {
  return processStat(pid)?.[19];
}

/** The fields of /proc/<pid>/stat after the command name (state first), or undefined off Linux. */
function processStat(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}
