import { afterEach, describe, expect, it } from 'vitest';
import { LocalNetwork, deriveSeed, seededRandom } from '../../src/index.js';
import { SharedLog } from '../../src/file.js';
import type { RaftHost } from '../../src/multi.js';
import { RecordingStateMachine, type TestTransition } from '../helpers/recording-state-machine.js';
import { tempDir } from '../storage/file-harness.js';
import { simHost, testGroup } from './hosts.js';

type Log = SharedLog<TestTransition, unknown>;
let cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

describe('RaftHost on one SharedLog per process', () => {
  it('saves every group of a tick in one flush, and a restarted process rebuilds every group from its log', async () => {
    const GROUPS = 16;
    const ids = [1, 2, 3];
    const net = new LocalNetwork<never>({ seed: 3 });
    const dirs = new Map<number, string>();
    for (const id of ids) {
      const { dir, remove } = await tempDir('tickraft-multi-wal-');
      dirs.set(id, dir);
      cleanups.push(remove);
    }
    const procs = new Map<
      number,
      { host: RaftHost<TestTransition>; log: Log; sms: Map<number, RecordingStateMachine> }
    >();
    const boot = async (id: number, epoch: number) => {
      const log: Log = new SharedLog(dirs.get(id)!);
      await log.open();
      cleanups.push(() => log.close());
      const host = simHost(net, id, epoch);
      // A restarted process finds its groups in its log.
      const groups = epoch === 0 ? Array.from({ length: GROUPS }, (_, g) => g + 1) : log.groupIds();
      const sms = new Map<number, RecordingStateMachine>();
      for (const g of groups) {
        const sm = new RecordingStateMachine(id);
        sms.set(g, sm);
        host.createGroup(g, testGroup(ids, sm, log.group(g), seededRandom(deriveSeed(g, id * 10 + epoch))));
      }
      procs.set(id, { host, log, sms });
    };
    for (const id of ids) await boot(id, 0);
    const down = new Set<number>();
    const run = async (ms: number) => {
      for (const end = net.now() + ms; net.now() < end;) {
        net.advance(2);
        for (const [id, p] of procs) if (!down.has(id)) await p.host.tick();
      }
    };
    const leaderOf = (g: number) =>
      ids.find((id) => !down.has(id) && procs.get(id)!.host.group(g)?.status.role === 'leader');
    await run(1_000);
    for (let g = 1; g <= GROUPS; g++) {
      const l = leaderOf(g)!;
      procs
        .get(l)!
        .sms.get(g)!
        .submit({ id: `w${g}` });
      procs.get(l)!.host.group(g)!.wake();
    }
    await run(300);
    for (const [, p] of procs) {
      for (const [g, sm] of p.sms) expect(sm.appliedIds).toContain(`w${g}`);
      // Many groups' batches per fdatasync: one flush per round that saved anything, not one per group.
      const { writes, saves } = p.log.stats;
      expect(writes).toBeLessThanOrEqual(p.host.stats.ticks);
      expect(saves / writes).toBeGreaterThan(1.5);
    }
    // Process 1 crashes (its log closed as the process dies) and comes back from its log alone.
    down.add(1);
    net.crash(1);
    await procs.get(1)!.log.close();
    await run(400);
    down.delete(1);
    await boot(1, 1);
    expect(procs.get(1)!.log.groupIds()).toHaveLength(GROUPS);
    await run(1_000);
    for (let g = 1; g <= GROUPS; g++) expect(procs.get(1)!.sms.get(g)!.appliedIds).toContain(`w${g}`);
  });
});
