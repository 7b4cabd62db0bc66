import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { mkdtemp, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { FileStorage, type FileStorageOptions } from '../../src/file.js';
import type { StorageHarness, Tr } from './storage-suite.js';

/** A fresh temporary directory, removed by the returned function. */
export async function tempDir(tag = 'tickraft-storage-'): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), tag));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** A FileStorage in a temp dir whose reopen() closes the current instance and opens a new one. */
export async function fileHarness(options: FileStorageOptions = {}): Promise<StorageHarness & { dir: string; current: () => FileStorage<Tr, unknown> }> {
  const { dir, remove } = await tempDir();
  let current = new FileStorage<Tr, unknown>(dir, options);
  return {
    dir,
    storage: current,
    current: () => current,
    async reopen() {
      await current.close();
      current = new FileStorage<Tr, unknown>(dir, options);
      return current;
    },
    async cleanup() {
      await current.close();
      await remove();
    },
  };
}

/** The compiled form of a test helper program (tests are compiled to dist/ before they run). */
export function compiled(relative: string): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('package.json not found above ' + import.meta.url);
    dir = up;
  }
  const file = path.join(dir, 'dist', relative);
  if (!existsSync(file)) throw new Error(`${file} is missing: compile first (npx tsc -p tsconfig.json)`);
  return file;
}

/** Runs a compiled helper to completion; resolves with its stdout. */
export function runNode(file: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
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
