// Quick write-throughput measure of FileStorage (not a test): node dist/tests/storage/bench-file.js
import { mkdtemp, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { FileStorage } from '../../src/file.js';

interface Cmd {
  id: string;
  op: string;
  key: string;
  value: string;
}

async function measure(batchSize: number, batches: number, fsync: boolean): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tickraft-bench-'));
  const s = new FileStorage<Cmd, unknown>(dir, { fsync });
  await s.load();
  let index = 0;
  const started = performance.now();
  for (let b = 0; b < batches; b++) {
    const append = [];
    for (let i = 0; i < batchSize; i++) {
      index++;
      append.push({
        index,
        term: 1,
        kind: 'transition' as const,
        transition: { id: `c${index}`, op: 'set', key: `key-${index % 1000}`, value: 'v'.repeat(32) },
      });
    }
    await s.save({ append });
  }
  const seconds = (performance.now() - started) / 1000;
  await s.close();
  await rm(dir, { recursive: true, force: true });
  return `${batchSize}-entry batches, fsync ${fsync ? 'on ' : 'off'}: ${Math.round(index / seconds).toLocaleString('en')} entries/s, ${Math.round(batches / seconds).toLocaleString('en')} saves/s, ${((seconds / batches) * 1000).toFixed(2)} ms/save`;
}

console.log(await measure(1000, 200, true));
console.log(await measure(1, 1000, true));
console.log(await measure(1000, 200, false));
console.log(await measure(1, 20000, false));
