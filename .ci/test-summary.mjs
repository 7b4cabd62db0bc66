// The closing line of CI, from the counts vitest wrote to its JSON report (argument 1):
// "tests: P passed, F failed" (", S skipped" when any were), so a failing run shows its real
// failed count. Also says, above it, when test files failed to run at all (an import error, an
// error outside any test), which no test count shows; CI's exit status carries that failure.
import { existsSync, readFileSync, statSync } from 'node:fs';

const file = process.argv[2];
if (file === undefined || !existsSync(file) || statSync(file).size === 0) {
  console.log('no test report: the build failed before any test ran');
  console.log('tests: 0 passed, 0 failed');
  process.exit(0);
}
const r = JSON.parse(readFileSync(file, 'utf8'));
const failedFiles = (r.testResults ?? []).filter((f) => f.status === 'failed' && f.assertionResults?.length === 0);
for (const f of failedFiles) console.log(`test file failed to run: ${f.name}: ${(f.message ?? '').split('\n')[0]}`);
const skipped = r.numPendingTests + r.numTodoTests;
console.log(
  `tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed${skipped > 0 ? `, ${skipped} skipped` : ''}`,
);
