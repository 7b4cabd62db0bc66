// The in-process demo (`npm run demo:sim`): five replicas of a key-value store on an in-process network with loss and
// delays, in virtual time, through an election, a leader crash, a restart, a partition and
// its heal, ending with a check that every replica holds the same data.
import { MemoryStorage, ProposalQueue, Replica } from 'tickraft';
import { LocalNetwork, deriveSeed, seededRandom, type LocalCluster } from 'tickraft/testing';
import { KV_NOOP, KvStateMachine, type KvCommand, type KvResult, type KvSnapshot } from './kv/state-machine.js';

const IDS = [1, 2, 3, 4, 5];
const SEED = Number(process.env.SEED ?? 7);
const network = new LocalNetwork<KvCommand, KvSnapshot>({ seed: SEED, loss: 0.02, minDelay: 1, maxDelay: 10 });

interface Member {
  replica: Replica<KvCommand, KvSnapshot>;
  kv: KvStateMachine;
  proposals: ProposalQueue<KvCommand, KvSnapshot, KvResult>;
  storage: MemoryStorage<KvCommand, KvSnapshot>;
  up: boolean;
  starts: number;
}
const members = new Map<number, Member>();

function boot(
  id: number,
  cluster: LocalCluster<KvCommand, KvSnapshot>,
  storage = new MemoryStorage<KvCommand, KvSnapshot>(),
  starts = 0,
): void {
  const kv = new KvStateMachine();
  const proposals = new ProposalQueue(kv, { clock: network.clock });
  const replica = new Replica<KvCommand, KvSnapshot>({
    id,
    peerIds: IDS.filter((p) => p !== id),
    cluster,
    stateMachine: proposals,
    noopTransition: KV_NOOP,
    heartbeatTimeout: 50,
    electionTimeoutRange: [150, 300],
    snapshotDelta: 100,
    storage,
    clock: network.clock,
    random: seededRandom(deriveSeed(SEED, id * 100 + starts)),
  });
  proposals.attach(replica);
  members.set(id, { replica, kv, proposals, storage, up: true, starts });
}
for (const id of IDS) boot(id, network.cluster(id));

const log = (what: string): void => console.log(`[${network.now().toFixed(0).padStart(6)} ms] ${what}`);
let knownLeader: string | undefined;

/** One millisecond of virtual time: every live replica ticks once. */
async function step(): Promise<void> {
  network.advance(1);
  for (const m of members.values()) if (m.up) await m.replica.tick();
  const leader = currentLeader();
  const key = leader ? `${leader.replica.status.id}@${leader.replica.status.term}` : undefined;
  if (leader && key !== knownLeader)
    log(`replica ${leader.replica.status.id} elected leader of term ${leader.replica.status.term}`);
  knownLeader = key ?? knownLeader;
}

function currentLeader(): Member | undefined {
  let best: Member | undefined;
  for (const m of members.values())
    if (m.up && m.replica.status.role === 'leader' && (!best || m.replica.status.term > best.replica.status.term))
      best = m;
  return best;
}

async function runUntil(done: () => boolean, ms: number): Promise<boolean> {
  const end = network.now() + ms;
  while (!done() && network.now() < end) await step();
  return done();
}

let seq = 0;
/** A client write: sent to the leader, retried (same id) until applied, as a real client would. */
async function put(key: string, value: string): Promise<void> {
  const command: KvCommand = { id: `demo:${++seq}`, client: 'demo', seq, op: 'put', key, value };
  for (;;) {
    await runUntil(() => currentLeader() !== undefined, 5_000);
    let settled: KvResult | Error | null = null;
    currentLeader()!
      .proposals.propose(command, { timeoutMs: 500 })
      .then(
        (r) => {
          settled = r;
        },
        (e: Error) => {
          settled = e;
        },
      );
    await runUntil(() => settled !== null, 500);
    if (settled !== null && !((settled as unknown) instanceof Error)) return;
  }
}

async function writeKeys(from: number, count: number): Promise<void> {
  for (let i = from; i < from + count; i++) await put(`key${i}`, `value${i}`);
  log(`wrote key${from}..key${from + count - 1} through the leader: all committed and applied`);
}

function crash(id: number): void {
  members.get(id)!.up = false;
  network.crash(id);
  log(`CRASH replica ${id}`);
}

function restart(id: number): void {
  const m = members.get(id)!;
  boot(id, network.restart(id), m.storage, m.starts + 1);
  log(`RESTART replica ${id} from its storage`);
}

console.log(
  `tickraft demo: ${IDS.length} replicas of a key-value store, in-process network with 2% loss and 1-10 ms delays, virtual time, seed ${SEED}\n`,
);
await runUntil(() => currentLeader() !== undefined, 5_000);
await writeKeys(0, 100);

const first = currentLeader()!.replica.status.id;
crash(first);
const crashedAt = network.now();
await runUntil(() => currentLeader() !== undefined, 5_000);
log(`new leader after ${(network.now() - crashedAt).toFixed(0)} ms without one`);
await writeKeys(100, 100);

restart(first);
const target = currentLeader()!.replica.status.commitIndex;
await runUntil(() => members.get(first)!.replica.status.lastApplied >= target, 5_000);
log(
  `replica ${first} caught up to index ${members.get(first)!.replica.status.lastApplied} (snapshots installed: ${members.get(first)!.replica.metrics.snapshotsInstalled})`,
);

const leaderNow = currentLeader()!.replica.status.id;
const minority = [leaderNow, IDS.find((id) => id !== leaderNow)!];
const majority = IDS.filter((id) => !minority.includes(id));
network.partition([minority, majority]);
log(`PARTITION {${minority.join(', ')}} | {${majority.join(', ')}}: the old leader is cut off from the majority`);
const stranded = members.get(leaderNow)!;
let strandedOutcome = 'pending';
stranded.proposals
  .propose({ id: 'stranded:1', client: 'stranded', seq: 1, op: 'put', key: 'lost', value: 'never' })
  .then(
    () => {
      strandedOutcome = 'applied';
    },
    (e: Error) => {
      strandedOutcome = e.message;
    },
  );
await runUntil(() => {
  const l = currentLeader();
  return l !== undefined && majority.includes(l.replica.status.id);
}, 5_000);
await writeKeys(200, 50);
network.heal();
log('HEAL: the partition is gone');
await runUntil(() => strandedOutcome !== 'pending', 5_000);
log(`the write sent to the cut-off leader: ${strandedOutcome}`);

const finalIndex = currentLeader()!.replica.status.commitIndex;
await runUntil(() => [...members.values()].every((m) => m.replica.status.lastApplied >= finalIndex), 5_000);
const dumps = [...members.entries()].map(([id, m]) => ({
  id,
  dump: JSON.stringify([...m.kv.data].sort()),
  size: m.kv.data.size,
  applied: m.replica.status.lastApplied,
}));
const agree = dumps.every((d) => d.dump === dumps[0]!.dump);
console.log('');
for (const d of dumps) console.log(`  replica ${d.id}: ${d.size} keys, applied through index ${d.applied}`);
console.log(
  `\n${agree && dumps[0]!.size === 250 ? 'OK' : 'FAILED'}: all ${IDS.length} replicas hold the same ${dumps[0]!.size} keys; ${network.stats.sent} messages sent, ${network.stats.dropped} dropped, ${network.now().toFixed(0)} ms of virtual time`,
);
network.stop();
if (!agree || dumps[0]!.size !== 250) process.exit(1);
