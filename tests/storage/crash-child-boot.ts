// The start of every crash-test child (crash-child.ts, shared-crash-child.ts): reads its
// arguments, says "booted", waits for the parent's "go" line, and opens its progress file.
import { once } from 'node:events';
import { openSync } from 'node:fs';

/**
 * Boots a child whose arguments are `names` then the progress file; resolves once the parent
 * says go, with the arguments and the progress file's descriptor (for synchronous writes, which
 * a SIGKILL cannot undo).
 */
export async function bootChild(
  script: string,
  names: readonly string[],
): Promise<{ args: string[]; progress: number }> {
  const args = process.argv.slice(2);
  if (args.length !== names.length + 1 || args.some((a) => a === ''))
    throw new Error(`usage: ${script} ${names.map((n) => `<${n}>`).join(' ')} <progress-file>`);
  process.stdout.write('booted\n');
  await once(process.stdin, 'data');
  // Never outlive the parent (stdin closes when it dies), nor run unattended for long.
  process.stdin.on('end', () => process.exit(2));
  setTimeout(() => process.exit(3), 10_000);
  return { args: args.slice(0, -1), progress: openSync(args.at(-1)!, 'w') };
}
