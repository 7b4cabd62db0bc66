// Counts the code lines of src/core (no blank lines, no comment lines) and fails above the
// promise of under 1,000, so the core cannot grow past it unnoticed.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const LIMIT = 1000;
const dir = new URL('../src/core/', import.meta.url).pathname;
let total = 0;
const rows = [];
for (const name of readdirSync(dir).filter((n) => n.endsWith('.ts') && !n.endsWith('.test.ts')).sort()) {
  let inBlock = false;
  let lines = 0;
  for (const raw of readFileSync(join(dir, name), 'utf8').split('\n')) {
    let line = raw.trim();
    if (inBlock) {
      const end = line.indexOf('*/');
      if (end < 0) continue;
      inBlock = false;
      line = line.slice(end + 2).trim();
    }
    if (line.startsWith('/*')) {
      const end = line.indexOf('*/');
      if (end < 0) { inBlock = true; continue; }
      line = line.slice(end + 2).trim();
    }
    if (line === '' || line.startsWith('//')) continue;
    lines++;
  }
  rows.push(`${String(lines).padStart(5)}  ${name}`);
  total += lines;
}
console.log(rows.join('\n'));
console.log(`${String(total).padStart(5)}  src/core total (limit: under ${LIMIT})`);
if (total >= LIMIT) {
  console.error(`src/core has ${total} code lines; the promise is under ${LIMIT}.`);
  process.exit(1);
}
