// The README's quick start must run as printed: its first `js` block is run by a child Node
// against the built package, imported by its own name ('tickraft' resolves to dist/ through
// the package's self-reference, as in a user's project), and must print the transition going
// queued → committed → applied.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

describe('the README quick start', () => {
  it('runs with node and prints queued → committed → applied', () => {
    const readme = readFileSync('README.md', 'utf8');
    const block = /```js\n([\s\S]*?)```/.exec(readme);
    expect(block, 'the README has a js code block').not.toBeNull();
    const code = block![1]!;
    expect(code).toContain("from 'tickraft'");
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', code], {
      cwd: process.cwd(),
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(child.status, child.stderr).toBe(0);
    const lines = child.stdout.split('\n');
    const leader = /^replica (\d+) leads$/.exec(lines.find((l) => l.endsWith(' leads')) ?? '')?.[1];
    expect(leader).toBeDefined();
    const states = lines.filter((l) => l.startsWith(`replica ${leader}: add-5 `)).map((l) => l.split(' ').pop());
    expect(states).toEqual(['queued', 'committed', 'applied']);
    expect(lines).toContain('applied on the leader: total = 5');
    // The followers apply it too.
    expect(lines.filter((l) => / add-5 applied$/.test(l))).toHaveLength(3);
  });
});
