import { describe, expect, it } from 'vitest';
import { LocalNetwork, ProposalQueue, Replica, deriveSeed, seededRandom } from '../../src/index.js';
import {
  KV_NOOP,
  KvStateMachine,
  type KvCommand,
  type KvResult,
  type KvSnapshot,
} from '../../docs/examples/kv/state-machine.js';
import { checkLinearizable, type HistoryOp, type KvOp } from '../helpers/linearizability.js';
import { CheckedStorage } from '../helpers/checked-storage.js';
import { tickHangingInSave } from '../helpers/simulation.js';
import { describeSeeds, replayable, seedsToRun } from './chaos.js';

const FILE = 'tests/simulation/linearizability.test.ts';

interface Member {
  replica: Replica<KvCommand, KvSnapshot>;
  kv: KvStateMachine;
  proposals: ProposalQueue<KvCommand, KvSnapshot, KvResult>;
  storage: CheckedStorage<KvCommand, KvSnapshot>;
  up: boolean;
  starts: number;
  /** Its next tick that saves ends in a crash, in the middle of the save. */
  crashWhileSaving?: boolean;
}

interface Client {
  id: number;
  seq: number;
  op?: HistoryOp;
  command?: KvCommand;
  lastAttempt: number;
  settled: boolean;
}

/**
 * Clients that retry through whoever leads, on a 3-replica key-value store under partitions,
 * crashes, loss and reordering. The history (gets included: they go through the log) must be
 * linearizable; operations a client gave up on have an unknown outcome.
 */
async function linearizabilityRun(seed: number): Promise<{ ops: number; unknown: number; states: number }> {
  const ids = [1, 2, 3];
  const random = seededRandom(deriveSeed(seed, 7));
  const network = new LocalNetwork<KvCommand, KvSnapshot>({
    seed: deriveSeed(seed, 8),
    loss: 0.05,
    duplication: 0.05,
    maxDelay: 10,
  });
  const members = new Map<number, Member>();
  // Half the seeds with §10.2.1, as tickraft-kv runs: a leader's appends leave before its save.
  const leaderSendsBeforeSave = seededRandom(deriveSeed(seed, 9))() < 0.5;
  const boot = (id: number, storage = new CheckedStorage<KvCommand, KvSnapshot>(), starts = 0): void => {
    const kv = new KvStateMachine();
    const proposals = new ProposalQueue(kv);
    const cluster = starts === 0 ? network.cluster(id) : network.restart(id);
    const replica = new Replica<KvCommand, KvSnapshot>({
      id,
      peerIds: ids.filter((p) => p !== id),
      cluster,
      stateMachine: proposals,
      noopTransition: KV_NOOP,
      heartbeatTimeout: 50,
      electionTimeoutRange: [150, 300],
      snapshotDelta: 15,
      storage,
      clock: network.clock,
      random: seededRandom(deriveSeed(seed, 100 + id * 10 + starts)),
      leaderSendsBeforeSave,
    });
    proposals.attach(replica);
    members.set(id, { replica, kv, proposals, storage, up: true, starts });
  };
  for (const id of ids) boot(id);
  const leader = (): Member | undefined => {
    let best: Member | undefined;
    for (const m of members.values())
      if (m.up && m.replica.status.role === 'leader' && (!best || m.replica.status.term > best.replica.status.term))
        best = m;
    return best;
  };
  const history: HistoryOp[] = [];
  const clients: Client[] = Array.from({ length: 4 }, (_, i) => ({ id: i, seq: 0, lastAttempt: 0, settled: true }));
  const keys = ['x', 'y'];
  let writes = 0;
  const refused: string[] = [];

  const attempt = (c: Client): void => {
    const target = leader() ?? members.get(ids[Math.floor(random() * ids.length)]!)!;
    c.lastAttempt = network.now();
    if (!target.up) return;
    const op = c.op!;
    if (op.op.kind === 'get' && c.id % 2 === 0) {
      // Ask any replica that believes it leads, a deposed one too.
      const claimants = [...members.values()].filter((m) => m.up && m.replica.status.role === 'leader');
      const target = claimants.length > 0 ? claimants[Math.floor(random() * claimants.length)]! : undefined;
      if (!target) return;
      // A read without a log write: readIndex, then the leader's own state machine.
      const key = op.op.key;
      target.replica.readIndex().then(
        () => {
          if (c.op !== op || c.settled || !target.up) return;
          op.ret = network.now();
          op.output = target.kv.data.get(key);
          c.settled = true;
        },
        () => {
          /* not the leader: the client retries below */
        },
      );
      return;
    }
    target.proposals.propose(c.command!).then(
      (result) => {
        if (c.op !== op || c.settled) return;
        // A retry repeats its command exactly, one at a time: nothing may be refused.
        if (!result.ok) refused.push(result.refused);
        op.ret = network.now();
        if (op.op.kind === 'get' && result.ok) op.output = result.previous;
        c.settled = true;
      },
      () => {
        /* abandoned: the client retries below */
      },
    );
  };

  const driveClients = (faultsOn: boolean): void => {
    const now = network.now();
    for (const c of clients) {
      if (c.settled) {
        if (!faultsOn || random() > 0.2) continue;
        const key = keys[Math.floor(random() * keys.length)]!;
        const kind = random();
        const op: KvOp =
          kind < 0.45
            ? { kind: 'get', key }
            : kind < 0.9
              ? { kind: 'put', key, value: `v${++writes}` }
              : { kind: 'delete', key };
        c.seq++;
        const id = `c${c.id}:${c.seq}`;
        c.command =
          op.kind === 'put'
            ? { id, client: `c${c.id}`, seq: c.seq, op: 'put', key, value: op.value }
            : { id, client: `c${c.id}`, seq: c.seq, op: op.kind, key };
        c.op = { client: c.id, op, call: now };
        history.push(c.op);
        c.settled = false;
        attempt(c);
      } else if (now - c.op!.call > 2_000) {
        c.settled = true; // Gave up: the outcome stays unknown (ret undefined).
      } else if (now - c.lastAttempt > 120) {
        attempt(c);
      }
    }
  };

  const step = async (faultsOn: boolean): Promise<void> => {
    network.advance(2);
    for (const [id, m] of members) {
      if (!m.up) continue;
      if (!m.crashWhileSaving) await m.replica.tick();
      else if (await tickHangingInSave(m.replica, m.storage)) {
        m.up = m.crashWhileSaving = false;
        network.crash(id);
      }
    }
    driveClients(faultsOn);
  };

  for (let t = 0; t < 1_500; t++) {
    await step(true);
    if (random() > 0.01) continue;
    const x = random();
    const victim = ids[Math.floor(random() * ids.length)]!;
    if (x < 0.3) network.isolate(victim);
    else if (x < 0.6) network.heal();
    else if (x < 0.8) {
      const m = members.get(victim)!;
      // Half the crashes come in the middle of the victim's next save (what it sent before is out).
      if (m.up && random() < 0.5) m.crashWhileSaving = true;
      else if (m.up) {
        m.up = false;
        network.crash(victim);
      }
    } else {
      const m = members.get(victim)!;
      if (!m.up) boot(victim, m.storage, m.starts + 1);
    }
  }
  network.heal();
  network.setFaults({ loss: 0, duplication: 0 });
  for (const m of members.values()) m.crashWhileSaving = false;
  for (const [id, m] of members) if (!m.up) boot(id, m.storage, m.starts + 1);
  for (let t = 0; t < 2_000 && clients.some((c) => !c.settled); t++) await step(false);

  if (refused.length > 0) throw new Error(`seed ${seed}: a retried command was refused: ${refused[0]}`);
  const result = checkLinearizable(history);
  if (!result.ok) throw new Error(`seed ${seed}: not linearizable: ${result.explanation}`);
  return {
    ops: history.length,
    unknown: history.filter((h) => h.ret === undefined).length,
    states: result.statesExplored,
  };
}

describe('linearizability of a replicated key-value store', () => {
  it('every history under faults is linearizable (puts and deletes through the log, gets through the log or readIndex, clients retrying)', async () => {
    let ops = 0;
    let unknown = 0;
    const seeds = seedsToRun(30, 20_001, 3);
    console.log(describeSeeds(seeds, FILE));
    const all = [...seeds.fixed, ...seeds.fresh];
    for (const seed of all) {
      const r = await replayable(seed, FILE, () => linearizabilityRun(seed));
      ops += r.ops;
      unknown += r.unknown;
    }
    console.log(`linearizability: ${all.length} seeds, ${ops} operations checked, ${unknown} with unknown outcome`);
    expect(ops).toBeGreaterThan(all.length * 50);
  }, 300_000);
});
