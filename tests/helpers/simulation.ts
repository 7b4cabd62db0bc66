import {
  LocalNetwork,
  Replica,
  deriveSeed,
  seededRandom,
  type LocalCluster,
  type Message,
  type ReplicaOptions,
} from '../../src/index.js';
import type { StateMachineTransition, Storage } from '../../src/index.js';
import type { Raft } from '../../src/core/raft.js';
import { CheckedStorage } from './checked-storage.js';
import { RaftInvariants } from './invariants.js';
import { RecordingStateMachine, type TestSnapshotData, type TestTransition } from './recording-state-machine.js';

/** One member of a simulated cluster: what survives a crash (storage) and what does not. */
export interface SimNode {
  readonly id: number;
  replica: Replica<TestTransition, TestSnapshotData>;
  sm: RecordingStateMachine;
  cluster: LocalCluster<TestTransition, TestSnapshotData>;
  readonly storage: CheckedStorage<TestTransition, TestSnapshotData>;
  up: boolean;
  restarts: number;
  /** Started with `join: true` (a replica added at run time, not yet in any configuration). */
  readonly join: boolean;
  /** The peers it was started with; kept across restarts, as a real deployment's configuration would be. */
  readonly peerIds: number[];
  /** Every registerMembership call, across restarts. */
  readonly memberships: number[][];
  /** Set by {@link Simulation.crashWhileSaving}: its next tick that saves ends in a crash, in the save. */
  crashWhileSaving?: boolean;
}

export type TestMessage = Message<TestTransition, TestSnapshotData>;

/** One message handed to a cluster by a replica, as seen before the network (recorded with `recordSent`). */
export interface SentRecord {
  readonly at: number;
  readonly from: number;
  readonly to: number;
  readonly message: TestMessage;
}

export interface SimulationOptions {
  size: number;
  seed: number;
  heartbeatTimeout?: number;
  electionTimeoutRange?: [number, number];
  snapshotDelta?: number;
  maxEntriesPerMessage?: number;
  /** Flow control by bytes; unset means the Replica's defaults. Tiny values send snapshots in several chunks. */
  maxBytesPerMessage?: number;
  maxInflightBytes?: number;
  /** §9.6 pre-vote and §6.2 check-quorum; unset means the Replica's defaults (both on). */
  preVote?: boolean;
  checkQuorum?: boolean;
  /** The Replica's `leaderSendsBeforeSave` (dissertation §10.2.1); unset means its default (off). */
  leaderSendsBeforeSave?: boolean;
  /** Record every message a replica sends in `sent` (off by default: long chaos runs send millions). */
  recordSent?: boolean;
  /** Check the invariants after every step (default true). */
  checkEveryStep?: boolean;
  network?: { loss?: number; duplication?: number; minDelay?: number; maxDelay?: number };
  /** Each replica's storage under the contract checks (default: memory). */
  storage?: () => Storage<TestTransition, TestSnapshotData>;
}

/**
 * Ticks `replica` with a storage whose saves never finish. Returns true if the tick saved: it
 * is then stuck there for good, with whatever it handed to the cluster before its save out, and
 * the caller crashes the replica (a process killed during its fsync). Returns false, once the
 * tick has ended, if it had nothing to save.
 */
export async function tickHangingInSave<T extends StateMachineTransition, D>(
  replica: Replica<T, D>,
  storage: CheckedStorage<T, D>,
): Promise<boolean> {
  const hung = storage.hung;
  storage.hangSaves = true;
  const tick = replica.tick();
  tick.catch(() => undefined); // pending for good if it waits on a save
  // Every microtask runs before an immediate: the tick has gone as far as it can (no timer is involved).
  await new Promise((resolve) => setImmediate(resolve));
  storage.hangSaves = false;
  if (storage.hung > hung) return true;
  await tick;
  return false;
}

/** The internal algorithm state of a replica, for invariant checks only. */
export function raftOf(
  replica: Replica<TestTransition, TestSnapshotData>,
): Raft<TestTransition, TestSnapshotData> | undefined {
  return (replica as unknown as { raft: Raft<TestTransition, TestSnapshotData> | undefined }).raft;
}

/**
 * A deterministic cluster: replicas on a LocalNetwork, a virtual clock, every random choice
 * drawn from one seed. `step()` advances virtual time to the next event (a message falling
 * due or a small quantum), ticks every live replica in id order, and checks Raft's
 * invariants; any violation throws with the seed, so the run replays exactly.
 *
 * Members can be added at run time ({@link add}, `join: true`), so the same cluster and the
 * same invariant checks serve the chaos runs, the scenarios and the membership tests of the
 * dissertation's rules (tests/paper/beyond.test.ts).
 */
export class Simulation {
  readonly network: LocalNetwork<TestTransition, TestSnapshotData>;
  readonly nodes = new Map<number, SimNode>();
  readonly random: () => number;
  /** The ids of every member ever started, ascending: the order replicas tick in. */
  readonly ids: number[];
  /** Every message sent, when `recordSent` is on. */
  readonly sent: SentRecord[] = [];
  steps = 0;
  /** Every violation found; `check()` throws on the first. */
  readonly violations: string[] = [];
  /** Raft's invariants, checked after every step; they report into `violations`. */
  private readonly invariants = new RaftInvariants<TestTransition>(this.violations);

  constructor(readonly options: SimulationOptions) {
    this.ids = Array.from({ length: options.size }, (_, i) => i + 1);
    this.random = seededRandom(deriveSeed(options.seed, 0));
    this.network = new LocalNetwork({ seed: deriveSeed(options.seed, 1), ...options.network });
    for (const id of this.ids) {
      const storage = new CheckedStorage<TestTransition, TestSnapshotData>(options.storage?.());
      const node = {
        id,
        storage,
        up: true,
        restarts: 0,
        join: false,
        peerIds: this.ids.filter((p) => p !== id),
        memberships: [],
      } as unknown as SimNode;
      this.nodes.set(id, node);
      this.build(node, this.network.cluster(id));
    }
  }

  get now(): number {
    return this.network.now();
  }

  node(id: number): SimNode {
    return this.nodes.get(id)!;
  }

  /** The Raft core of a live replica. */
  core(id: number): Raft<TestTransition, TestSnapshotData> {
    return raftOf(this.node(id).replica)!;
  }

  /** Adds and starts a replica at run time; a joining one (`join`) is given `peerIds` = the current members. */
  add(id: number, peerIds: number[], join: boolean): SimNode {
    const storage = new CheckedStorage<TestTransition, TestSnapshotData>(this.options.storage?.());
    const node = { id, storage, up: true, restarts: 0, join, peerIds, memberships: [] } as unknown as SimNode;
    this.nodes.set(id, node);
    this.ids.push(id);
    this.ids.sort((a, b) => a - b);
    this.build(node, this.network.cluster(id));
    return node;
  }

  private build(node: SimNode, cluster: LocalCluster<TestTransition, TestSnapshotData>): void {
    const o = this.options;
    node.cluster = cluster;
    // The wrappers are installed before the replica exists, so they see its first calls too.
    if (o.recordSent) {
      const send = cluster.sendMessage.bind(cluster);
      cluster.sendMessage = (to, message) => {
        this.sent.push({ at: this.now, from: node.id, to, message });
        send(to, message);
      };
    }
    const register = cluster.registerMembership.bind(cluster);
    cluster.registerMembership = (ids) => {
      node.memberships.push([...ids]);
      register(ids);
    };
    node.sm = new RecordingStateMachine(
      node.id,
      (rid, index, hash) => this.invariants.observeApply(rid, index, hash),
      'noop',
      (i) => raftOf(node.replica)?.log.entry(i)?.config !== undefined,
    );
    const options: ReplicaOptions<TestTransition, TestSnapshotData> = {
      id: node.id,
      peerIds: node.peerIds,
      cluster,
      stateMachine: node.sm,
      noopTransition: { id: 'noop' },
      heartbeatTimeout: o.heartbeatTimeout ?? 50,
      electionTimeoutRange: o.electionTimeoutRange ?? [150, 300],
      snapshotDelta: o.snapshotDelta ?? 0,
      storage: node.storage,
      clock: this.network.clock,
      random: seededRandom(deriveSeed(this.options.seed, 100 + node.id * 1000 + node.restarts)),
      ...(o.maxEntriesPerMessage ? { maxEntriesPerMessage: o.maxEntriesPerMessage } : {}),
      ...(o.maxBytesPerMessage ? { maxBytesPerMessage: o.maxBytesPerMessage } : {}),
      ...(o.maxInflightBytes ? { maxInflightBytes: o.maxInflightBytes } : {}),
      preVote: o.preVote,
      checkQuorum: o.checkQuorum,
      ...(o.leaderSendsBeforeSave === undefined ? {} : { leaderSendsBeforeSave: o.leaderSendsBeforeSave }),
      join: node.join,
    };
    node.replica = new Replica(options);
  }

  /** Stops a replica at once; its storage survives. */
  crash(id: number): void {
    const node = this.node(id);
    node.crashWhileSaving = false;
    if (!node.up) return;
    node.up = false;
    this.network.crash(id);
  }

  /**
   * Crashes a replica in the middle of its next tick that saves: whatever that tick handed to the
   * network before its save is out, and the batch never reaches the storage (as a process killed
   * during its fsync). Ticks with nothing to save run as usual until then; a restart cancels it.
   */
  crashWhileSaving(id: number): void {
    const node = this.node(id);
    if (node.up) node.crashWhileSaving = true;
  }

  /** Builds a new replica over the crashed one's storage: a restart after a crash. */
  restart(id: number): void {
    const node = this.node(id);
    node.crashWhileSaving = false; // a restart (the heal's, too) cancels a crash still to come
    if (node.up) return;
    node.up = true;
    node.restarts++;
    this.build(node, this.network.restart(id));
    this.invariants.restarted(id);
  }

  /** Advances to the next message or by at most `quantum` ms, ticks every live replica, checks. */
  async step(quantum = 5): Promise<void> {
    const now = this.network.now();
    const next = this.network.nextDeliveryTime();
    // At least 1 ms per step: messages falling due within it are delivered together, as a real tick would.
    this.network.advanceTo(
      next !== undefined && next < now + quantum ? Math.max(next, now + Math.min(1, quantum)) : now + quantum,
    );
    for (const id of this.ids) {
      const node = this.node(id);
      if (node.crashWhileSaving && node.up) await this.tickIntoCrash(node);
      else if (node.up) await node.replica.tick();
    }
    this.steps++;
    if (this.options.checkEveryStep !== false) this.check();
  }

  /** A tick under {@link Simulation.crashWhileSaving}: if it saves, the save never finishes and the replica crashes. */
  private async tickIntoCrash(node: SimNode): Promise<void> {
    if (await tickHangingInSave(node.replica, node.storage)) this.crash(node.id);
  }

  /** Steps until `ms` of virtual time have passed. */
  async run(ms: number): Promise<void> {
    const end = this.now + ms;
    while (this.now < end) await this.step(Math.min(5, end - this.now));
  }

  /** Steps until `done()` holds; throws (naming the seed) if it does not within `ms`. */
  async runUntil(done: () => boolean, ms: number, what = 'condition'): Promise<void> {
    const end = this.now + ms;
    while (!done()) {
      if (this.now >= end)
        throw new Error(
          `seed ${this.options.seed}: ${what} not reached within ${ms} ms (at ${this.now}); replicas: ${this.describe()}`,
        );
      await this.step();
    }
  }

  /** Each replica's status and view of the membership, for failure messages. */
  describe(): string {
    return JSON.stringify(
      [...this.nodes.values()].map((n) => ({
        ...n.replica.status,
        up: n.up,
        voters: raftOf(n.replica)?.membership.voters,
      })),
    );
  }

  /** The live replica that leads in the highest term, if any. */
  leader(): SimNode | undefined {
    let best: SimNode | undefined;
    for (const node of this.nodes.values()) {
      const s = node.replica.status;
      if (node.up && s.role === 'leader' && (!best || s.term > best.replica.status.term)) best = node;
    }
    return best;
  }

  /**
   * Runs until some live replica leads, every live replica in `ids` (default: all) follows it in
   * its term, and that has held for one maximum election timeout. Agreement alone is not enough:
   * right after a heal, replicas that were cut off still name the old leader, yet their election
   * timers may be about to fire.
   */
  async stableLeader(ms = 5_000, ids = [...this.nodes.keys()]): Promise<SimNode> {
    const hold = (this.options.electionTimeoutRange ?? [150, 300])[1];
    let held: { leader: string; since: number } | undefined;
    await this.runUntil(
      () => {
        const l = this.leader();
        const { term, id } = l?.replica.status ?? {};
        const agreed =
          l !== undefined &&
          ids
            .map((i) => this.node(i))
            .every((n) => !n.up || (n.replica.status.term === term && n.replica.status.leaderId === id));
        const leader = agreed ? `${id} in term ${term}` : undefined;
        if (leader !== held?.leader) held = leader === undefined ? undefined : { leader, since: this.now };
        return held !== undefined && this.now - held.since >= hold;
      },
      ms,
      'a stable leader',
    );
    return this.leader()!;
  }

  /** Runs until every node in `ids` has applied every id in `txIds`. */
  async untilApplied(ids: number[], txIds: string[], ms: number, what = 'commands applied'): Promise<void> {
    await this.runUntil(
      () =>
        ids.every((id) => {
          const applied = new Set(this.node(id).sm.appliedIds);
          return txIds.every((t) => applied.has(t));
        }),
      ms,
      what,
    );
  }

  /** Submits transitions to the leader and runs until every live node in `ids` applied them. */
  async write(ids: number[], txIds: string[], ms = 3_000): Promise<void> {
    this.leader()!.sm.submit(...txIds.map((id) => ({ id })));
    await this.untilApplied(ids, txIds, ms, `${txIds.join(',')} applied on ${ids.join(',')}`);
  }

  /** Settles `p` by stepping; returns its outcome (or 'pending' after `ms`). */
  async outcome(p: Promise<void>, ms: number): Promise<'resolved' | Error | 'pending'> {
    let result: 'resolved' | Error | 'pending' = 'pending';
    p.then(
      () => {
        result = 'resolved';
      },
      (e: Error) => {
        result = e;
      },
    );
    const end = this.now + ms;
    while (result === 'pending' && this.now < end) await this.step();
    return result;
  }

  /** Checks every Raft invariant on the current state; throws with the seed on the first violation. */
  check(): void {
    for (const node of this.nodes.values()) {
      const raft = raftOf(node.replica);
      if (!raft || !node.up) continue;
      this.invariants.check(node.id, raft);
      const id = node.id;
      for (const v of [...node.sm.violations, ...node.storage.violations]) this.violations.push(`replica ${id}: ${v}`);
      node.sm.violations.length = node.storage.violations.length = 0;
    }
    if (this.violations.length > 0)
      throw new Error(`seed ${this.options.seed}, step ${this.steps}, time ${this.now}: ${this.violations[0]}`);
  }
}
