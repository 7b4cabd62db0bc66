/**
 * Helpers for the "Beyond little-raft" tests (tests/paper/beyond.test.ts):
 * - {@link beyondReplica}: one public `Replica` over a scripted cluster, like PaperReplica, but
 *   with pre-vote, check-quorum and join settable (PaperReplica fixes them off);
 * - {@link BeyondSim}: replicas on a LocalNetwork in virtual time, modelled on Simulation, whose
 *   members can be added at run time (`join: true`) and whose options include pre-vote and
 *   check-quorum. Raft's invariants are checked after every step, as Simulation does.
 */
import { LocalNetwork, Replica, deriveSeed, seededRandom, type LocalCluster, type ReplicaOptions } from '../../src/index.js';
import type { Raft } from '../../src/core/raft.js';
import type { Entry } from '../../src/core/message.js';
import { CheckedStorage } from './checked-storage.js';
import { RecordingStateMachine, type TestSnapshotData, type TestTransition } from './recording-state-machine.js';
import { RecordingStorage, ScriptedCluster, TracingStateMachine, type Msg, type Sent } from './paper-harness.js';

type T = TestTransition;
type D = TestSnapshotData;

export function coreOf(replica: Replica<T, D>): Raft<T, D> {
  return (replica as unknown as { raft: Raft<T, D> }).raft;
}

/** A scripted cluster that also records registerMembership calls. */
export class MembershipScriptedCluster extends ScriptedCluster {
  readonly memberships: number[][] = [];
  registerMembership(ids: number[]): void { this.memberships.push([...ids]); }
}

export interface BeyondReplicaOptions {
  id?: number;
  peerIds?: number[];
  preVote?: boolean;
  checkQuorum?: boolean;
  join?: boolean;
  snapshotDelta?: number;
  storage?: RecordingStorage;
  /** Saved into a new storage before the first tick. */
  state?: { term: number; entries: Entry<T>[] };
}

/** One replica driven by hand: fake clock (`now`), random 0 (election timeout exactly 150 ms), heartbeat 50 ms. */
export class ScriptedReplica {
  readonly trace: string[] = [];
  readonly cluster = new MembershipScriptedCluster(this.trace);
  readonly sm: TracingStateMachine;
  readonly storage: RecordingStorage;
  readonly replica: Replica<T, D>;
  readonly id: number;
  now = 0;

  constructor(readonly options: BeyondReplicaOptions = {}) {
    this.id = options.id ?? 1;
    this.storage = options.storage ?? new RecordingStorage();
    this.sm = new TracingStateMachine(this.id, this.trace);
    this.replica = new Replica<T, D>({
      id: this.id, peerIds: options.peerIds ?? [2, 3], cluster: this.cluster, stateMachine: this.sm, noopTransition: { id: 'noop' },
      heartbeatTimeout: 50, electionTimeoutRange: [150, 300], storage: this.storage, clock: () => this.now, random: () => 0,
      snapshotDelta: options.snapshotDelta ?? 0,
      preVote: options.preVote ?? false, checkQuorum: options.checkQuorum ?? false, join: options.join ?? false,
    });
  }

  get status(): Replica<T, D>['status'] { return this.replica.status; }
  get raft(): Raft<T, D> { return coreOf(this.replica); }

  async tick(at?: number): Promise<void> {
    if (at !== undefined) this.now = at;
    await this.replica.tick();
  }

  async deliver(messages: Msg[], at?: number): Promise<void> {
    this.cluster.inbox.push(...messages);
    await this.tick(at);
  }

  take(): Sent[] {
    const out = this.cluster.outbox;
    this.cluster.outbox = [];
    return out;
  }

  takeOfType<K extends Msg['type']>(type: K): [number, Extract<Msg, { type: K }>][] {
    return this.take().filter(([, m]) => m.type === type) as [number, Extract<Msg, { type: K }>][];
  }
}

/** Builds a scripted replica and runs its first tick (load, start the election timer). */
export async function beyondReplica(options: BeyondReplicaOptions = {}): Promise<ScriptedReplica> {
  const r = new ScriptedReplica(options);
  if (options.state) await r.storage.inner.save({ hardState: { term: options.state.term, votedFor: undefined }, append: options.state.entries });
  await r.tick();
  return r;
}

/** Records application indexes so a test can see which indexes were skipped (configuration entries). */
export class IndexRecordingStateMachine extends RecordingStateMachine {
  readonly appliedIndexes: number[] = [];
  override applyTransition(t: T, index: number): void {
    // Configuration entries take indexes that are not applied: allow the gap, record it.
    if (index > this.lastIndex + 1) this.lastIndex = index - 1;
    this.appliedIndexes.push(index);
    super.applyTransition(t, index);
  }
}

export interface BeyondNode {
  readonly id: number;
  replica: Replica<T, D>;
  sm: IndexRecordingStateMachine;
  cluster: LocalCluster<T, D>;
  readonly storage: CheckedStorage<T, D>;
  up: boolean;
  restarts: number;
  join: boolean;
  peerIds: number[];
  /** Every registerMembership call, across restarts. */
  readonly memberships: number[][];
}

export interface SentRecord { readonly at: number; readonly from: number; readonly to: number; readonly message: Msg }

export interface BeyondSimOptions {
  size: number;
  seed: number;
  preVote?: boolean;
  checkQuorum?: boolean;
  snapshotDelta?: number;
  heartbeatTimeout?: number;
  electionTimeoutRange?: [number, number];
}

/** A deterministic cluster on a LocalNetwork; invariants are checked after every step. */
export class BeyondSim {
  readonly network: LocalNetwork<T, D>;
  readonly nodes = new Map<number, BeyondNode>();
  readonly sent: SentRecord[] = [];
  readonly violations: string[] = [];
  steps = 0;
  private readonly leaders = new Map<number, number>();
  private readonly highestTerm = new Map<number, number>();
  private readonly votes = new Map<string, number>();
  private readonly entryAt = new Map<string, string>();
  private readonly appliedHash = new Map<number, number>();

  constructor(readonly options: BeyondSimOptions) {
    this.network = new LocalNetwork<T, D>({ seed: deriveSeed(options.seed, 1) });
    const ids = Array.from({ length: options.size }, (_, i) => i + 1);
    for (const id of ids) this.add(id, ids.filter((p) => p !== id), false);
  }

  get now(): number { return this.network.now(); }
  node(id: number): BeyondNode { return this.nodes.get(id)!; }
  core(id: number): Raft<T, D> { return coreOf(this.node(id).replica); }

  /** Adds and starts a replica; a joining one is given `peerIds` = the current members. */
  add(id: number, peerIds: number[], join: boolean): BeyondNode {
    const node = { id, storage: new CheckedStorage<T, D>(), up: true, restarts: 0, join, peerIds, memberships: [] } as unknown as BeyondNode;
    this.nodes.set(id, node);
    this.build(node, this.network.cluster(id));
    return node;
  }

  private build(node: BeyondNode, cluster: LocalCluster<T, D>): void {
    const o = this.options;
    node.cluster = cluster;
    const send = cluster.sendMessage.bind(cluster);
    cluster.sendMessage = (to, message) => { this.sent.push({ at: this.now, from: node.id, to, message }); send(to, message); };
    const register = cluster.registerMembership.bind(cluster);
    cluster.registerMembership = (ids) => { node.memberships.push([...ids]); register(ids); };
    node.sm = new IndexRecordingStateMachine(node.id, (rid, index, hash) => {
      const first = this.appliedHash.get(index);
      if (first === undefined) this.appliedHash.set(index, hash);
      else if (first !== hash) this.violations.push(`State Machine Safety: replica ${rid} applied a different history at ${index}`);
    });
    const options: ReplicaOptions<T, D> = {
      id: node.id, peerIds: node.peerIds, cluster, stateMachine: node.sm, noopTransition: { id: 'noop' },
      heartbeatTimeout: o.heartbeatTimeout ?? 50, electionTimeoutRange: o.electionTimeoutRange ?? [150, 300],
      snapshotDelta: o.snapshotDelta ?? 0, storage: node.storage, clock: this.network.clock,
      random: seededRandom(deriveSeed(o.seed, 100 + node.id * 1000 + node.restarts)),
      preVote: o.preVote ?? true, checkQuorum: o.checkQuorum ?? true, join: node.join,
    };
    node.replica = new Replica(options);
  }

  crash(id: number): void {
    const node = this.node(id);
    if (!node.up) return;
    node.up = false;
    this.network.crash(id);
  }

  restart(id: number): void {
    const node = this.node(id);
    if (node.up) return;
    node.up = true;
    node.restarts++;
    this.build(node, this.network.restart(id));
  }

  async step(quantum = 5): Promise<void> {
    const now = this.network.now();
    const next = this.network.nextDeliveryTime();
    this.network.advanceTo(next !== undefined && next < now + quantum ? Math.max(next, now + Math.min(1, quantum)) : now + quantum);
    for (const node of [...this.nodes.values()].sort((a, b) => a.id - b.id)) if (node.up) await node.replica.tick();
    this.steps++;
    this.check();
  }

  async run(ms: number): Promise<void> {
    const end = this.now + ms;
    while (this.now < end) await this.step(Math.min(5, end - this.now));
  }

  async runUntil(done: () => boolean, ms: number, what = 'condition'): Promise<void> {
    const end = this.now + ms;
    while (!done()) {
      if (this.now >= end) throw new Error(`seed ${this.options.seed}: ${what} not reached within ${ms} ms (at ${this.now})`);
      await this.step();
    }
  }

  /** The live replica that leads in the highest term, if any. */
  leader(): BeyondNode | undefined {
    let best: BeyondNode | undefined;
    for (const node of this.nodes.values()) {
      const s = node.replica.status;
      if (node.up && s.role === 'leader' && (!best || s.term > best.replica.status.term)) best = node;
    }
    return best;
  }

  /** Runs until one live replica leads and every live replica in `ids` (default: all) follows it. */
  async stableLeader(ms = 5_000, ids = [...this.nodes.keys()]): Promise<BeyondNode> {
    await this.runUntil(() => {
      const l = this.leader();
      if (!l) return false;
      const { term, id } = l.replica.status;
      return ids.every((i) => !this.node(i).up || (this.node(i).replica.status.term === term && this.node(i).replica.status.leaderId === id));
    }, ms, 'a stable leader');
    return this.leader()!;
  }

  /** Submits transitions to the leader and runs until every live node in `ids` applied them. */
  async write(ids: number[], txIds: string[], ms = 3_000): Promise<void> {
    this.leader()!.sm.submit(...txIds.map((id) => ({ id })));
    await this.runUntil(() => ids.every((i) => txIds.every((t) => this.node(i).sm.appliedIds.includes(t))), ms, `${txIds.join(',')} applied on ${ids.join(',')}`);
  }

  /** Settles `p` by stepping; returns its outcome (or 'pending' after `ms`). */
  async outcome(p: Promise<void>, ms: number): Promise<'resolved' | Error | 'pending'> {
    let result: 'resolved' | Error | 'pending' = 'pending';
    p.then(() => { result = 'resolved'; }, (e: Error) => { result = e; });
    const end = this.now + ms;
    while (result === 'pending' && this.now < end) await this.step();
    return result;
  }

  /** Election Safety, terms never go back, one vote per term, Log Matching, State Machine Safety. */
  check(): void {
    for (const node of this.nodes.values()) {
      if (!node.up) continue;
      const raft = coreOf(node.replica) as Raft<T, D> | undefined;
      if (!raft) continue;
      const { term, role, votedFor, log, commitIndex } = raft;
      const id = node.id;
      if (role.kind === 'leader') {
        const other = this.leaders.get(term);
        if (other !== undefined && other !== id) this.violations.push(`Election Safety: ${other} and ${id} both lead term ${term}`);
        this.leaders.set(term, id);
      }
      if (term < (this.highestTerm.get(id) ?? 0)) this.violations.push(`replica ${id}'s term went back to ${term}`);
      this.highestTerm.set(id, term);
      if (votedFor !== undefined) {
        const key = `${id}:${term}`;
        const earlier = this.votes.get(key);
        if (earlier !== undefined && earlier !== votedFor) this.violations.push(`replica ${id} voted twice in term ${term}`);
        this.votes.set(key, votedFor);
      }
      for (let i = log.snapshotIndex + 1; i <= log.lastIndex; i++) {
        const e = log.entry(i)!;
        const key = `${i}:${e.term}`;
        const tag = `${e.transition.id}${e.config ? `[${e.config.join(',')}]` : ''}`;
        const known = this.entryAt.get(key);
        if (known === undefined) this.entryAt.set(key, tag);
        else if (known !== tag) this.violations.push(`Log Matching: index ${i} term ${e.term} holds ${known} and ${tag}`);
      }
      if (commitIndex > log.lastIndex) this.violations.push(`replica ${id} committed ${commitIndex} beyond its log ${log.lastIndex}`);
      for (const v of [...node.sm.violations, ...node.storage.violations]) this.violations.push(`replica ${id}: ${v}`);
      node.sm.violations.length = node.storage.violations.length = 0;
    }
    if (this.violations.length > 0) throw new Error(`seed ${this.options.seed}, step ${this.steps}, time ${this.now}: ${this.violations[0]}`);
  }
}
