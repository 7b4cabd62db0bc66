import { LocalNetwork, ProposalQueue, deriveSeed, seededRandom, type Snapshot } from '../../src/index.js';
import { RaftHost, localHostNetwork, type GroupId } from '../../src/multi.js';
import type { Replica } from '../../src/index.js';
import {
  KV_NOOP,
  KvStateMachine,
  type KvCommand,
  type KvResult,
  type KvSnapshot,
} from '../../docs/examples/kv/state-machine.js';
import { CheckedStorage } from '../helpers/checked-storage.js';
import { RaftInvariants } from '../helpers/invariants.js';
import { checkLinearizable, type HistoryOp, type KvOp } from '../helpers/linearizability.js';
import { extendHash } from '../helpers/recording-state-machine.js';
import { raftOf } from '../helpers/simulation.js';

/** A key-value snapshot plus the hash of the history it covers, so State Machine Safety is checked across snapshots. */
export interface HashedSnapshot {
  readonly kv: KvSnapshot;
  readonly hash: number;
}

/** The kv state machine, reporting the hash of its applied history at every index. */
export class ObservedKv {
  readonly kv = new KvStateMachine();
  private hash = 0;

  constructor(private readonly observe: (index: number, hash: number) => void) {}

  applyTransition(c: KvCommand, index: number): KvResult {
    this.hash = extendHash(this.hash, c.id);
    this.observe(index, this.hash);
    return this.kv.applyTransition(c, index);
  }
  createSnapshot(index: number, term: number): Snapshot<HashedSnapshot> {
    const s = this.kv.createSnapshot(index, term);
    return { ...s, data: { kv: s.data, hash: this.hash } };
  }
  setSnapshot(s: Snapshot<HashedSnapshot>): void {
    this.kv.setSnapshot({ ...s, data: s.data.kv });
    this.hash = s.data.hash;
    this.observe(s.lastIncludedIndex, this.hash);
  }
}

type Storage = CheckedStorage<KvCommand, HashedSnapshot>;

/** One group's member on one process: what a crash loses (the replica, its state machine) and keeps (storage). */
interface Member {
  replica: Replica<KvCommand, HashedSnapshot>;
  kv: ObservedKv;
  proposals: ProposalQueue<KvCommand, HashedSnapshot, KvResult>;
}

/** A group: where it is placed, its invariants, its clients' history. */
export interface SimGroup {
  readonly id: GroupId;
  readonly members: number[];
  readonly invariants: RaftInvariants<KvCommand>;
  readonly storages: Map<number, Storage>;
  readonly history: HistoryOp[];
  readonly clients: Client[];
  removed: boolean;
}

interface Client {
  readonly id: number;
  seq: number;
  op?: HistoryOp;
  command?: KvCommand;
  lastAttempt: number;
  settled: boolean;
}

/** One process: a host when up. */
interface Process {
  readonly id: number;
  host: RaftHost<KvCommand, HashedSnapshot> | undefined;
  readonly members: Map<GroupId, Member>;
  starts: number;
}

export interface MultiSimOptions {
  seed: number;
  processes: number;
  groups: number;
  /** Members per group (placed round-robin over the processes). */
  replication?: number;
  network?: { loss?: number; duplication?: number; maxDelay?: number };
  quiesce?: boolean;
  snapshotDelta?: number;
}

/**
 * Several Raft groups over one shared simulated network of processes, each process a
 * {@link RaftHost}: seeded, on a virtual clock, with partitions and crash/restart of whole
 * processes, groups created and removed at run time. Every step checks every group's Raft
 * invariants on every live member; clients write and read each group through its leader, and
 * each group's history must be linearizable.
 */
export class MultiSim {
  readonly network: LocalNetwork<never>;
  readonly random: () => number;
  readonly processes = new Map<number, Process>();
  readonly groups = new Map<GroupId, SimGroup>();
  steps = 0;
  private nextGroup = 1;
  private writes = 0;

  constructor(readonly options: MultiSimOptions) {
    this.random = seededRandom(deriveSeed(options.seed, 0));
    this.network = new LocalNetwork<never>({ seed: deriveSeed(options.seed, 1), ...options.network });
    for (let id = 1; id <= options.processes; id++)
      this.processes.set(id, { id, host: undefined, members: new Map(), starts: 0 });
    for (let i = 0; i < options.groups; i++) this.createGroup();
    for (const p of this.processes.values()) this.boot(p);
  }

  get now(): number {
    return this.network.now();
  }

  /** Places a new group on `replication` processes (round-robin) and creates it on those that are up. */
  createGroup(): SimGroup {
    const id = this.nextGroup++;
    const n = this.options.processes;
    const size = Math.min(this.options.replication ?? 3, n);
    const members = Array.from({ length: size }, (_, i) => ((id + i) % n) + 1).sort((a, b) => a - b);
    const g: SimGroup = {
      id,
      members,
      invariants: new RaftInvariants<KvCommand>(),
      storages: new Map(members.map((m) => [m, new CheckedStorage<KvCommand, HashedSnapshot>()])),
      history: [],
      clients: [0, 1].map((c) => ({ id: c, seq: 0, lastAttempt: 0, settled: true })),
      removed: false,
    };
    this.groups.set(id, g);
    for (const m of members) {
      const p = this.processes.get(m)!;
      if (p.host) this.place(p, g);
    }
    return g;
  }

  /** Removes a group from every process: its history so far is still checked at the end. */
  async removeGroup(id: GroupId): Promise<void> {
    const g = this.groups.get(id)!;
    g.removed = true;
    for (const m of g.members) {
      const p = this.processes.get(m)!;
      p.members.delete(id);
      await p.host?.removeGroup(id);
    }
  }

  private place(p: Process, g: SimGroup): void {
    const kv = new ObservedKv((index, hash) => g.invariants.observeApply(p.id, index, hash));
    const proposals = new ProposalQueue<KvCommand, HashedSnapshot, KvResult>(kv);
    const replica = p.host!.createGroup(g.id, {
      members: g.members,
      stateMachine: proposals,
      noopTransition: KV_NOOP,
      heartbeatTimeout: 20,
      electionTimeoutRange: [100, 200],
      snapshotDelta: this.options.snapshotDelta ?? 25,
      storage: g.storages.get(p.id)!,
      random: seededRandom(deriveSeed(this.options.seed, 1_000 + g.id * 100 + p.id * 10 + p.starts)),
    });
    proposals.attach(replica);
    g.invariants.restarted(p.id);
    p.members.set(g.id, { replica, kv, proposals });
  }

  private boot(p: Process): void {
    const link = p.starts === 0 ? this.network.cluster(p.id) : this.network.restart(p.id);
    p.host = new RaftHost<KvCommand, HashedSnapshot>({
      id: p.id,
      network: localHostNetwork(link),
      clock: this.network.clock,
      epoch: p.starts,
      livenessInterval: 20,
      suspectAfter: 60,
      quiesce: this.options.quiesce ?? true,
    });
    p.members.clear();
    for (const g of this.groups.values()) if (!g.removed && g.members.includes(p.id)) this.place(p, g);
  }

  /** Crashes a whole process: every group member on it goes down at once; storage survives. */
  crash(id: number): void {
    const p = this.processes.get(id)!;
    if (!p.host) return;
    this.network.crash(id);
    p.host = undefined;
    p.members.clear();
  }

  restart(id: number): void {
    const p = this.processes.get(id)!;
    if (p.host) return;
    p.starts++;
    this.boot(p);
  }

  isUp(id: number): boolean {
    return this.processes.get(id)!.host !== undefined;
  }

  /** The live member of group `id` leading in the highest term. */
  leader(id: GroupId): Member | undefined {
    let best: Member | undefined;
    for (const p of this.processes.values()) {
      const m = p.members.get(id);
      const s = m?.replica.status;
      if (m && s!.role === 'leader' && (!best || s!.term > best.replica.status.term)) best = m;
    }
    return best;
  }

  /** The live members of group `id`. */
  live(id: GroupId): Member[] {
    return [...this.processes.values()].flatMap((p) => p.members.get(id) ?? []);
  }

  /** Advances 2 ms, ticks every live host in id order, checks every group; clients act when `clients` is set. */
  async step(clients = false): Promise<void> {
    this.network.advance(2);
    for (const p of this.processes.values()) await p.host?.tick();
    this.steps++;
    this.check();
    for (const g of this.groups.values()) if (!g.removed) this.driveClients(g, clients);
  }

  check(): void {
    for (const p of this.processes.values())
      for (const [gid, m] of p.members) {
        const g = this.groups.get(gid)!;
        const raft = raftOf(m.replica as never);
        if (raft) g.invariants.check(p.id, raft as never);
        const storage = g.storages.get(p.id)!;
        g.invariants.violations.push(...storage.violations.map((v) => `storage of ${p.id}: ${v}`));
        storage.violations.length = 0;
        if (g.invariants.violations.length > 0)
          throw new Error(
            `seed ${this.options.seed}, step ${this.steps}, time ${this.now}, group ${gid}: ${g.invariants.violations[0]}`,
          );
      }
  }

  /** Each client of the group: a new operation now and then, retried through the leader until it settles. */
  private driveClients(g: SimGroup, newOps: boolean): void {
    const now = this.now;
    for (const c of g.clients) {
      if (c.settled) {
        if (!newOps || this.random() > 0.05) continue;
        const key = this.random() < 0.5 ? 'x' : 'y';
        const r = this.random();
        const op: KvOp =
          r < 0.4
            ? { kind: 'get', key }
            : r < 0.85
              ? { kind: 'put', key, value: `v${++this.writes}` }
              : { kind: 'delete', key };
        c.seq++;
        const id = `g${g.id}c${c.id}:${c.seq}`;
        const client = `c${c.id}`;
        c.command =
          op.kind === 'put'
            ? { id, client, seq: c.seq, op: 'put', key, value: op.value }
            : { id, client, seq: c.seq, op: op.kind, key };
        c.op = { client: c.id, op, call: now };
        g.history.push(c.op);
        c.settled = false;
        this.attempt(g, c);
      } else if (now - c.op!.call > 1_500) {
        c.settled = true; // given up: the outcome stays unknown
      } else if (now - c.lastAttempt > 80) {
        this.attempt(g, c);
      }
    }
  }

  private attempt(g: SimGroup, c: Client): void {
    c.lastAttempt = this.now;
    const live = this.live(g.id);
    const target = this.leader(g.id) ?? live[Math.floor(this.random() * live.length)];
    if (!target) return;
    const op = c.op!;
    const settle = (output?: string): void => {
      if (c.op !== op || c.settled) return;
      op.ret = this.now;
      if (op.op.kind === 'get') op.output = output;
      c.settled = true;
    };
    if (op.op.kind === 'get' && c.id === 0) {
      // Client 0 reads without a log write: readIndex, then the leader's own state.
      const key = op.op.key;
      target.replica.readIndex().then(
        () => settle(target.kv.kv.data.get(key)),
        () => undefined,
      );
      return;
    }
    target.proposals.propose(c.command!).then(
      (result) => {
        if (!result.ok) throw new Error(`seed ${this.options.seed}: a retried command was refused: ${result.refused}`);
        settle(result.previous);
      },
      () => undefined,
    );
  }

  /**
   * After the run: every group's members agree on its data, and its history, closed by a read of
   * every key, is linearizable (so no acknowledged write was lost).
   */
  verify(): { ops: number; unknown: number } {
    let ops = 0;
    let unknown = 0;
    for (const g of this.groups.values()) {
      const history = [...g.history];
      if (!g.removed) this.closeWithReads(g, history);
      const result = checkLinearizable(history);
      if (!result.ok)
        throw new Error(`seed ${this.options.seed}: group ${g.id} not linearizable: ${result.explanation}`);
      ops += g.history.length;
      unknown += g.history.filter((h) => h.ret === undefined).length;
    }
    return { ops, unknown };
  }

  /** Checks that the group's members agree, and appends a read of every key to `history`. */
  private closeWithReads(g: SimGroup, history: HistoryOp[]): void {
    {
      const live = this.live(g.id);
      const data = live.map((m) => JSON.stringify([...m.kv.kv.data].sort()));
      if (new Set(data).size > 1)
        throw new Error(`seed ${this.options.seed}: group ${g.id}'s members disagree: ${data.join(' / ')}`);
      for (const key of ['x', 'y'])
        history.push({
          client: 99,
          op: { kind: 'get', key },
          call: this.now,
          ret: this.now,
          output: live[0]!.kv.kv.data.get(key),
        });
    }
  }
}
