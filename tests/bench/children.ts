/**
 * The bench's child processes: where the bench replica's entry point is, and a register that
 * kills every child still running when the bench exits, whatever the exit path. A module of its
 * own so that the modes which fork children (limits, skeleton, groups, kv, processes) share it
 * without importing one another.
 */
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The bench replica and helper processes' entry point (server.ts, compiled). */
export const SERVER_JS = fileURLToPath(new URL('./server.js', import.meta.url));

/** Every child this process started and that may still run: killed on exit, whatever happens. */
const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

/** Registers `child` to be killed when the bench exits; returns it. */
export function track(child: ChildProcess): ChildProcess {
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}
