import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { mkdtemp, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { FileStorage, type FileStorageOptions } from '../../src/file.js';
import type { StorageUnderTest } from '../../src/testing.js';
import type { Tr } from './workload.js';

/** A fresh temporary directory, removed by the returned function. */
export async function tempDir(tag = 'tickraft-storage-'): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), tag));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * A fresh FileStorage directory for the Storage conformance suite: each open() is a new
 * FileStorage on the same directory (the suite closes the one before), as a restarted process
 * would open it.
 */
export async function fileHarness(options: FileStorageOptions = {}): Promise<StorageUnderTest> {
  const { dir, remove } = await tempDir();
  return { open: () => new FileStorage<Tr, unknown>(dir, options), cleanup: remove };
}

/** The directory of package.json above this file, in tests/ or compiled in dist/tests/. */
function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('package.json not found above ' + import.meta.url);
    dir = up;
  }
  return dir;
}

/** The compiled form of a test helper program (tests are compiled to dist/ before they run). */
export function compiled(relative: string): string {
  const file = path.join(packageRoot(), 'dist', relative);
  if (!existsSync(file)) throw new Error(`${file} is missing: compile first (npx tsc -p tsconfig.json)`);
  return file;
}

/** A file or directory of tests/storage/fixtures. */
export const fixture = (name: string): string => path.join(packageRoot(), 'tests', 'storage', 'fixtures', name);

/** Runs a compiled helper to completion; resolves with its stdout. */
export function runNode(
  file: string,
  args: string[],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [file, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
