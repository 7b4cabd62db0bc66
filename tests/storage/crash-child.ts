// Child of crash.test.ts: saves batches through FileStorage until it is SIGKILLed.
//   node crash-child.js <dir> <seed> <progress-file>
// Boots, prints "booted" and waits for a line on stdin before touching the directory, so that
// the parent can start the next child while it still checks the previous one. Prints "ready"
// once loaded. The record of progress goes to <progress-file>, not to stdout: "try <seq>" before
// each save and "ack <seq>" once it has resolved, each with a synchronous write() to a file,
// which a SIGKILL cannot undo. (Stdout is a socket that Node writes asynchronously; a line
// still queued in the child when it dies would be lost, and the parent would think a batch
// had never been attempted.)
import { writeSync } from 'node:fs';
import { FileStorage } from '../../src/file.js';
import { bootChild } from './crash-child-boot.js';
import { crashBatch, modelOf, type Tr } from './workload.js';

const {
  args: [dir, seedText],
  progress,
} = await bootChild('crash-child', ['dir', 'seed']);
const seed = Number(seedText);
const storage = new FileStorage<Tr, unknown>(dir!, { segmentBytes: 8 * 1024 });
const state = await storage.load();
const model = modelOf(state);
writeSync(progress, `ready ${state.term}\n`);
process.stdout.write('ready\n');
for (let seq = state.term + 1; ; seq++) {
  const batch = crashBatch(model, seed, seq);
  writeSync(progress, `try ${seq}\n`);
  await storage.save(batch);
  model.apply(batch);
  writeSync(progress, `ack ${seq}\n`);
}
