// No line over 120 characters in the library's sources: prettier keeps code within its printWidth
// but not a long string or comment, and src/core and src/replica are formatted by hand (their line
// budgets count them as written). Tests and examples are held to prettier's layout alone:
// `node .ci/line-width.mjs --all` lists their long strings and comments too.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const WIDTH = 120;
const DIRS = process.argv.includes('--all') ? ['src', 'tests', 'docs/examples'] : ['src'];
const root = new URL('..', import.meta.url).pathname;

function* files(dir) {
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) yield* files(path);
    else if (/\.(ts|mts|cts|js|mjs|cjs)$/.test(name)) yield path;
  }
}

let over = 0;
for (const dir of DIRS) {
  for (const path of files(join(root, dir))) {
    readFileSync(path, 'utf8')
      .split('\n')
      .forEach((line, i) => {
        if (line.length <= WIDTH) return;
        over++;
        console.log(`${relative(root, path)}:${i + 1}: ${line.length} characters`);
      });
  }
}
console.log(`${over} line(s) over ${WIDTH} characters in ${DIRS.join(', ')}`);
if (over > 0) process.exit(1);
