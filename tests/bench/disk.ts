/**
 * Where the durable cases keep their files, and what filesystem that is. `os.tmpdir()` may be a
 * tmpfs, where fsync costs nothing and durable figures would be fiction, so the bench takes the
 * first of TICKRAFT_BENCH_DIR, os.tmpdir() and node_modules/.cache of this checkout that is not
 * held in memory, and every report says which it took.
 */
import { mkdirSync, mkdtempSync, readFileSync, realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** A directory for durable files and the mount it lives on. */
export interface BenchDisk {
  /** The parent directory the bench creates its temporary directories in. */
  dir: string;
  /** The filesystem type from /proc/mounts (`ext4`, `xfs`, `tmpfs`, …), or `unknown`. */
  fsType: string;
  /** The device or source of that mount. */
  device: string;
  /** The mount point. */
  mount: string;
  /** True when the filesystem keeps its data in memory (fsync is then free). */
  inMemory: boolean;
}

const MEMORY_FS = new Set(['tmpfs', 'ramfs', 'devtmpfs', 'overlay-tmpfs']);

/** The /proc/mounts entry holding `path` (the longest mount point that prefixes it). */
export function mountOf(path: string): { fsType: string; device: string; mount: string } {
  let real = path;
  try {
    real = realpathSync(path);
  } catch {
    // keep the path as given
  }
  let best = { fsType: 'unknown', device: 'unknown', mount: '' };
  let table = '';
  try {
    table = readFileSync('/proc/mounts', 'utf8');
  } catch {
    return best;
  }
  for (const line of table.split('\n')) {
    const [device, mount, fsType] = line.split(' ');
    if (device === undefined || mount === undefined || fsType === undefined) continue;
    const m = mount.replace(/\\040/g, ' ');
    const inside = m === '/' || real === m || real.startsWith(`${m}/`);
    if (inside && m.length >= best.mount.length) best = { fsType, device, mount: m };
  }
  return best;
}

let chosen: BenchDisk | undefined;

/** The bench's durable directory (chosen once per process). */
export function benchDisk(): BenchDisk {
  if (chosen) return chosen;
  const cache = fileURLToPath(new URL('../../../node_modules/.cache/tickraft-bench/', import.meta.url));
  const candidates = [process.env.TICKRAFT_BENCH_DIR, tmpdir(), cache].filter(
    (d): d is string => d !== undefined && d !== '',
  );
  for (const dir of candidates) {
    mkdirSync(dir, { recursive: true });
    const m = mountOf(dir);
    const disk = { dir, ...m, inMemory: MEMORY_FS.has(m.fsType) };
    if (!disk.inMemory) return (chosen = disk);
    chosen ??= disk;
  }
  return chosen!;
}

/** A fresh temporary directory on the bench's disk. */
export function benchTemp(prefix: string): string {
  return mkdtempSync(join(benchDisk().dir, prefix));
}

/** One line for the report: where the files live and on what. */
export function describeDisk(d: BenchDisk = benchDisk()): string {
  const warning = d.inMemory ? ' (IN MEMORY: fsync is free here, the durable figures are not)' : '';
  return `${d.dir} on ${d.device} (${d.fsType}, mounted at ${d.mount})${warning}`;
}
