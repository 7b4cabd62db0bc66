// Child of shared-crash.test.ts: every group of one SharedLog saves batches at once until the
// process is SIGKILLed.
//   node shared-crash-child.js <dir> <seed> <groups> <progress-file>
// As crash-child.ts (boots, waits for a line on stdin, records progress with synchronous
// writes), with one line per group and batch: "g<group> try <seq>" before the save, "g<group> ack
// <seq>" once it has resolved. Group g runs the crash workload with seed + g; the groups' loops
// run concurrently, so their saves share writes.
import { writeSync } from 'node:fs';
import { SharedLog } from '../../src/file.js';
import { bootChild } from './crash-child-boot.js';
import { crashBatch, modelOf, type Tr } from './workload.js';

const {
  args: [dir, seedText, groupsText],
  progress,
} = await bootChild('shared-crash-child', ['dir', 'seed', 'groups']);
const seed = Number(seedText);
// Small segments, so that kills also land in checkpoints and segment deletions.
const log = new SharedLog<Tr, unknown>(dir!, { segmentBytes: 4 * 1024 });
await log.open();
writeSync(progress, 'ready 0\n');
process.stdout.write('ready\n');
await Promise.all(
  Array.from({ length: Number(groupsText) }, async (_, g) => {
    const storage = log.group(g);
    const state = await storage.load();
    const model = modelOf(state);
    for (let seq = state.term + 1; ; seq++) {
      const batch = crashBatch(model, seed + g, seq);
      writeSync(progress, `g${g} try ${seq}\n`);
      await storage.save(batch);
      model.apply(batch);
      writeSync(progress, `g${g} ack ${seq}\n`);
    }
  }),
);
