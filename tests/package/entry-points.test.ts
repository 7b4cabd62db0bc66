// What each entry point of the built package loads. The root is what every user imports, so it
// must not pull in the network stack or the MessagePack dependency: those belong to tickraft/tcp.
// A child process imports each entry point through the package's own name (self-reference to
// dist/, as a user's code would) and reports the modules it loaded.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const dir = mkdtempSync(join(tmpdir(), 'tickraft-entry-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// A resolve hook (run by Node in its hooks thread) appends every module URL it resolves to a file:
// it sees npm packages that a builtin-module list cannot show.
writeFileSync(
  join(dir, 'hooks.mjs'),
  `import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  appendFileSync(process.env.TICKRAFT_TRACE, result.url + '\\n');
  return result;
}
`,
);
writeFileSync(
  join(dir, 'register.mjs'),
  `import { register } from 'node:module';
register(${JSON.stringify(pathToFileURL(join(dir, 'hooks.mjs')).href)});
`,
);

/** Runs `script` in a child Node at the repository root (where 'tickraft' names this package); its stdout lines. */
function run(script: string, nodeArgs: string[] = [], env: Record<string, string> = {}): string[] {
  const child = spawnSync(process.execPath, [...nodeArgs, '--input-type=module', '-e', script], {
    cwd: process.cwd(),
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 30_000,
  });
  expect(child.status, child.stderr).toBe(0);
  return child.stdout.split('\n').filter((l) => l !== '');
}

/** The builtins and npm packages that importing `entry` loads, by name ('node:net', 'msgpackr'). */
function loadedBy(entry: string): string[] {
  // Builtins from Node's own list, in a child without hooks (the hooks thread loads builtins of its own).
  // The list is copied before the first console.log: a piped stdout is itself a node:net socket.
  const builtins = run(`await import(${JSON.stringify(entry)});
const list = [...process.moduleLoadList];
for (const m of list) if (m.startsWith('NativeModule ')) console.log('node:' + m.slice(13));`);
  const trace = join(dir, `${entry.replace(/\W/g, '_')}.trace`);
  writeFileSync(trace, '');
  run(`await import(${JSON.stringify(entry)});`, ['--import', pathToFileURL(join(dir, 'register.mjs')).href], {
    TICKRAFT_TRACE: trace,
  });
  const urls = readFileSync(trace, 'utf8').split('\n');
  const packages = urls
    .map((u) => /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(u)?.[1])
    .filter((p) => p !== undefined);
  return [...new Set([...builtins, ...packages])];
}

const NETWORK = ['node:net', 'node:tls', 'msgpackr'];

describe('entry points of the built package', { timeout: 60_000 }, () => {
  it.each(['tickraft', 'tickraft/file', 'tickraft/testing', 'tickraft/multi'])(
    '%s loads neither node:net, node:tls nor msgpackr',
    (entry) => {
      const loaded = loadedBy(entry);
      // The trace does see packages: the root's Replica needs this one.
      if (entry === 'tickraft') expect(loaded).toContain('async-mutex');
      for (const name of NETWORK) expect(loaded, `${entry} loaded ${name}`).not.toContain(name);
    },
  );

  it('tickraft/tcp loads all three (so the check above can see them)', () => {
    const loaded = loadedBy('tickraft/tcp');
    for (const name of NETWORK) expect(loaded).toContain(name);
  });
});
