// Power loss at the process level, in two halves (Linux only: it reads /proc/self).
//
// A SIGKILLed process loses nothing it wrote: its data is in the kernel's page cache, which
// lives on. A power cut loses what was never flushed. So that killing every member at once is a
// real test of fsync, this layer is loaded into each member (`NODE_OPTIONS=--import=<this
// file>`, env FAULTS_POWERLOSS_JOURNAL=<file>): it watches every FileHandle write, sync and
// datasync and journals, per file, how many bytes are durable (written with O_DSYNC/O_SYNC, or
// flushed since). After the kill, {@link losePower} (run by the suite, with the process dead)
// cuts each file back to its durable length, as the disk would hold it after the power came back.
//
// A simplification, on the safe side for the system under test: a file's bytes from before this
// process first wrote to it count as durable, and directory entries (creations, renames) are
// taken as durable at once.
import { appendFileSync, fstatSync, readFileSync, readlinkSync } from 'node:fs';
import { open, readFile, stat, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** O_DSYNC on Linux (O_SYNC includes it). */
const O_DSYNC = 0o10000;

const journal = process.env.FAULTS_POWERLOSS_JOURNAL;
if (journal !== undefined && process.platform === 'linux') {
  const probe = await open(join(tmpdir(), `power-loss-${process.pid}`), 'w');
  const proto = Object.getPrototypeOf(probe) as Record<string, (...args: unknown[]) => Promise<unknown>>;
  await probe.close();
  /** Per inode: its path when last seen and its durable length. */
  const files = new Map<number, { path: string; durable: number }>();
  const track = (fd: number): { ino: number; size: number; entry: { path: string; durable: number } } => {
    const st = fstatSync(fd);
    let entry = files.get(st.ino);
    if (!entry) {
      entry = { path: readlinkSync(`/proc/self/fd/${fd}`), durable: st.size };
      files.set(st.ino, entry);
    }
    return { ino: st.ino, size: st.size, entry };
  };
  const note = (ino: number, e: { path: string; durable: number }): void =>
    appendFileSync(journal, `${ino}\t${e.durable}\t${e.path}\n`);
  const dsync = (fd: number): boolean => {
    const m = /^flags:\s*([0-7]+)/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
    return m !== null && (parseInt(m[1]!, 8) & O_DSYNC) !== 0;
  };
  const wrap = (name: string, after: (fd: number) => void): void => {
    const original = proto[name]!;
    proto[name] = async function (this: { fd: number }, ...args: unknown[]): Promise<unknown> {
      const r = await original.apply(this, args);
      after(this.fd);
      return r;
    };
  };
  // Track the inode on first sight before the write, so that bytes already there count as durable.
  for (const name of ['write', 'writev']) {
    const original = proto[name]!;
    proto[name] = async function (this: { fd: number }, ...args: unknown[]): Promise<unknown> {
      track(this.fd);
      const r = await original.apply(this, args);
      const { ino, size, entry } = track(this.fd);
      if (dsync(this.fd)) entry.durable = size;
      note(ino, entry);
      return r;
    };
  }
  for (const name of ['sync', 'datasync']) {
    wrap(name, (fd) => {
      const { ino, size, entry } = track(fd);
      entry.durable = size;
      note(ino, entry);
    });
  }
  wrap('truncate', (fd) => {
    const { ino, size, entry } = track(fd);
    entry.durable = Math.min(entry.durable, size);
    note(ino, entry);
  });
}

/**
 * After the process that kept `journalFile` died: cuts every file it wrote back to its durable
 * length. Returns the bytes lost. The journal is emptied (the next process starts afresh).
 */
export async function losePower(journalFile: string): Promise<number> {
  let text: string;
  try {
    text = await readFile(journalFile, 'utf8');
  } catch {
    return 0;
  }
  const last = new Map<string, { ino: number; durable: number }>();
  for (const line of text.split('\n')) {
    const [ino, durable, ...path] = line.split('\t');
    if (path.length === 0) continue;
    last.set(path.join('\t'), { ino: Number(ino), durable: Number(durable) });
  }
  let lost = 0;
  for (const [path, { ino, durable }] of last) {
    const st = await stat(path).catch(() => undefined);
    // Renamed or deleted since, or replaced by another file: nothing to cut here.
    if (!st || st.ino !== ino || st.size <= durable) continue;
    lost += st.size - durable;
    await truncate(path, durable);
  }
  await truncate(journalFile, 0).catch(() => undefined);
  return lost;
}
