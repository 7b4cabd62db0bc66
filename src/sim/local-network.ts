import type { Cluster } from '../core/cluster.js';
import type { Message } from '../core/message.js';
import type { ReplicaId, StateMachineTransition } from '../core/types.js';
import { Inbox } from './inbox.js';
import { seededRandom } from './random.js';

/**
 * The fault rates and delays of a {@link LocalNetwork}, changeable during a run with
 * {@link LocalNetwork.setFaults}.
 */
export interface FaultOptions {
  /**
   * Probability in [0, 1] that a sent message is lost.
   * @defaultValue 0
   */
  loss?: number;
  /**
   * Probability in [0, 1] that a message that is not lost arrives twice (the copy has its own delay).
   * @defaultValue 0
   */
  duplication?: number;
  /**
   * Shortest delay of a message, in virtual milliseconds.
   * @defaultValue 1
   */
  minDelay?: number;
  /**
   * Longest delay of a message, in virtual milliseconds; at least `minDelay`.
   * @defaultValue 5
   */
  maxDelay?: number;
}

/** How a {@link LocalNetwork} is built. */
export interface LocalNetworkOptions extends FaultOptions {
  /**
   * Seed of the network's randomness (delays, loss, duplication): a safe integer.
   * @defaultValue 1
   */
  seed?: number;
  /**
   * The virtual clock's first reading, in milliseconds.
   * @defaultValue 0
   */
  startTime?: number;
}

/**
 * Counts of what a {@link LocalNetwork} did. At any time,
 * `sent + duplicated = delivered + dropped + (messages in flight)`.
 */
export interface NetworkStats {
  /** Calls to `sendMessage`, on any cluster. */
  readonly sent: number;
  /** Messages returned by `receiveMessages`. */
  readonly delivered: number;
  /** Messages lost: to loss, a partition, a crashed or stopped node, or a node with no cluster. */
  readonly dropped: number;
  /** Extra copies queued by duplication. */
  readonly duplicated: number;
}

/** The {@link Cluster} a {@link LocalNetwork} hands to one replica, plus what the network observed of it. */
export interface LocalCluster<T extends StateMachineTransition, D = unknown> extends Cluster<T, D> {
  /** The replica this cluster belongs to. */
  readonly id: ReplicaId;
  /** The leader last reported through `registerLeader` (undefined until then). */
  readonly leaderId: ReplicaId | undefined;
  /** The members last reported through `registerMembership`, if ever. */
  readonly memberIds: readonly ReplicaId[] | undefined;
  /** Records the replica's configuration; the network only keeps it for inspection. */
  registerMembership(memberIds: ReplicaId[]): void;
}

/** One replica's place in the network: whether it is up, its current cluster, its inbox. */
interface Node<T extends StateMachineTransition, D> {
  up: boolean;
  endpoint: Endpoint<T, D>;
  readonly inbox: Inbox<T, D>;
}

/** One incarnation of a replica's cluster. Once retired (crash or restart) it is inert. */
class Endpoint<T extends StateMachineTransition, D> implements LocalCluster<T, D> {
  retired = false;
  leaderId: ReplicaId | undefined = undefined;
  memberIds: readonly ReplicaId[] | undefined = undefined;

  constructor(
    readonly id: ReplicaId,
    private readonly net: LocalNetwork<T, D>,
    private readonly wire: Wire<T, D>,
  ) {}

  sendMessage(toId: ReplicaId, message: Message<T, D>): void {
    this.wire.send(this, toId, message);
  }
  receiveMessages(): Message<T, D>[] {
    return this.wire.receive(this);
  }
  halt(): boolean {
    return this.retired || this.net.stopped;
  }
  // A replica still running on a retired cluster must not overwrite the views of its successor.
  registerLeader(leaderId: ReplicaId | undefined): void {
    if (!this.retired) this.leaderId = leaderId;
  }
  registerMembership(memberIds: ReplicaId[]): void {
    if (!this.retired) this.memberIds = [...memberIds];
  }
}

/** What an {@link Endpoint} needs from the network; kept off the public class. */
interface Wire<T extends StateMachineTransition, D> {
  send(from: Endpoint<T, D>, to: ReplicaId, message: Message<T, D>): void;
  receive(at: Endpoint<T, D>): Message<T, D>[];
}

const fail = (what: string): never => {
  throw new TypeError(`invalid LocalNetwork options: ${what}`);
};

function checkFaults(f: Required<FaultOptions>): void {
  for (const k of ['loss', 'duplication'] as const) {
    if (typeof f[k] !== 'number' || !(f[k] >= 0 && f[k] <= 1))
      fail(`${k} must be a probability in [0, 1], got ${String(f[k])}`);
  }
  for (const k of ['minDelay', 'maxDelay'] as const) {
    if (typeof f[k] !== 'number' || !Number.isFinite(f[k]) || f[k] < 0)
      fail(`${k} must be a finite number of ms >= 0, got ${String(f[k])}`);
  }
  if (f.minDelay > f.maxDelay) fail(`minDelay (${f.minDelay}) must not exceed maxDelay (${f.maxDelay})`);
}

/**
 * An in-process network on a virtual clock, with seeded delays, loss, duplication, partitions
 * and crash/restart: the place to test a state machine under faults, and the network of
 * tickraft's own deterministic simulations.
 *
 * Nothing here reads a real clock or `Math.random`: time moves only through
 * {@link LocalNetwork.advance} / {@link LocalNetwork.advanceTo}, and every random choice comes
 * from the seed. Given the same seed and the same sequence of calls, a run repeats exactly.
 *
 * Every message is copied with `structuredClone` when sent, so sender and receiver never share
 * an object. Each copy takes a delay drawn uniformly from [minDelay, maxDelay], which reorders
 * messages naturally. A message to an id that has no cluster yet is dropped, like a packet to
 * a host that is not listening.
 *
 * @example
 * ```ts
 * const net = new LocalNetwork<Cmd>({ seed: 7, loss: 0.05 });
 * const ids = [1, 2, 3];
 * const replicas = ids.map((id) => new Replica<Cmd>({
 *   id, peerIds: ids.filter((p) => p !== id),
 *   cluster: net.cluster(id), clock: net.clock, random: seededRandom(deriveSeed(7, id)),
 *   stateMachine: new Counter(), noopTransition: { id: 'noop', add: 0 },
 *   heartbeatTimeout: 20, electionTimeoutRange: [100, 200],
 * }));
 * const run = async (ms: number) => {
 *   for (const end = net.now() + ms; net.now() < end; net.advance(1)) {
 *     for (const r of replicas) await r.tick();
 *   }
 * };
 * await run(1000);                 // a leader is elected
 * net.partition([[1], [2, 3]]);    // 1 is cut off; 2 and 3 still form a majority
 * await run(1000);
 * net.heal();                      // everyone hears everyone again
 * await run(1000);
 * console.log(net.leaderViews()); // Map { 1 => 2, 2 => 2, 3 => 2 }, for example
 * ```
 *
 * @typeParam T - The replicas' transition type.
 * @typeParam D - The replicas' snapshot data type.
 */
export class LocalNetwork<T extends StateMachineTransition, D = unknown> {
  /** The virtual clock as a standalone function: pass it as a replica's `clock` option. */
  readonly clock: () => number = () => this.time;

  private time: number;
  private readonly random: () => number;
  private faults: Required<FaultOptions>;
  private readonly nodes = new Map<ReplicaId, Node<T, D>>();
  private readonly counts = { sent: 0, delivered: 0, dropped: 0, duplicated: 0 };
  private seq = 0;
  private isStopped = false;
  /** The group of each id while partitioned; undefined when healed. */
  private groups: Map<ReplicaId, number> | undefined = undefined;
  private readonly isolated = new Set<ReplicaId>();
  private readonly wire: Wire<T, D> = {
    send: (from, to, message) => this.send(from, to, message),
    receive: (at) => this.receive(at),
  };

  /**
   * @param options - Seed, start time, delays and fault rates; see {@link LocalNetworkOptions}.
   * @throws TypeError naming the option, if one is invalid.
   */
  constructor(options: LocalNetworkOptions = {}) {
    const seed = options.seed ?? 1;
    if (!Number.isSafeInteger(seed)) fail(`seed must be a safe integer, got ${String(seed)}`);
    const startTime = options.startTime ?? 0;
    if (typeof startTime !== 'number' || !Number.isFinite(startTime))
      fail(`startTime must be a finite number, got ${String(startTime)}`);
    this.faults = {
      loss: options.loss ?? 0,
      duplication: options.duplication ?? 0,
      minDelay: options.minDelay ?? 1,
      maxDelay: options.maxDelay ?? 5,
    };
    checkFaults(this.faults);
    this.time = startTime;
    this.random = seededRandom(seed);
  }

  /** The virtual time, in milliseconds. */
  now(): number {
    return this.time;
  }

  /**
   * Moves the clock forward by `ms`.
   * @throws RangeError if `ms` is negative or not finite: virtual time never goes back.
   */
  advance(ms: number): void {
    if (!(Number.isFinite(ms) && ms >= 0))
      throw new RangeError(`advance(ms) needs a finite ms >= 0, got ${String(ms)}`);
    this.time += ms;
  }

  /**
   * Moves the clock to `t`; `t` equal to {@link LocalNetwork.now} is allowed and does nothing.
   * @throws RangeError if `t` is before now or not finite: virtual time never goes back.
   */
  advanceTo(t: number): void {
    if (!(Number.isFinite(t) && t >= this.time))
      throw new RangeError(`advanceTo(${String(t)}) would move time back from ${this.time}`);
    this.time = t;
  }

  /**
   * The earliest delivery time of any message in flight, or undefined when none is. A simulation
   * can jump there instead of stepping through idle time. It may be at or before
   * {@link LocalNetwork.now} when a receiver has not polled yet, and the message may still be
   * dropped on arrival if a partition now separates the two ends.
   */
  nextDeliveryTime(): number | undefined {
    let next: number | undefined;
    for (const node of this.nodes.values()) {
      const at = node.inbox.peek()?.deliverAt;
      if (at !== undefined && (next === undefined || at < next)) next = at;
    }
    return next;
  }

  /**
   * The cluster of replica `id`, created (and the node brought up) on the first call; later calls
   * return the same object until {@link LocalNetwork.restart} replaces it.
   */
  cluster(id: ReplicaId): LocalCluster<T, D> {
    return this.node(id).endpoint;
  }

  /** Whether `id` has a cluster and is not crashed. */
  isUp(id: ReplicaId): boolean {
    return this.nodes.get(id)?.up ?? false;
  }

  /** Each known replica's current view of the leader (undefined while it is down or knows none). */
  leaderViews(): Map<ReplicaId, ReplicaId | undefined> {
    const views = new Map<ReplicaId, ReplicaId | undefined>();
    for (const [id, node] of this.nodes) views.set(id, node.up ? node.endpoint.leaderId : undefined);
    return views;
  }

  /** What the network has done so far (a copy; it does not change afterwards). */
  get stats(): NetworkStats {
    return { ...this.counts };
  }

  /** True once {@link LocalNetwork.stop} was called. */
  get stopped(): boolean {
    return this.isStopped;
  }

  /**
   * Changes fault rates and delays from now on; messages already in flight keep their delays.
   * @throws TypeError if the resulting settings are invalid (nothing changes then).
   */
  setFaults(faults: FaultOptions): void {
    const next = { ...this.faults };
    for (const k of ['loss', 'duplication', 'minDelay', 'maxDelay'] as const)
      if (faults[k] !== undefined) next[k] = faults[k];
    checkFaults(next);
    this.faults = next;
  }

  /** Cuts `id` off from every other node (on top of any partition) until {@link LocalNetwork.heal}. */
  isolate(id: ReplicaId): void {
    this.isolated.add(id);
  }

  /**
   * Splits the network into groups that hear only each other; an id in no group hears no one.
   * Replaces any earlier partition and isolation. Messages already in flight between groups are
   * lost when they would arrive.
   * @throws TypeError if an id appears in two groups.
   */
  partition(groups: ReplicaId[][]): void {
    const of = new Map<ReplicaId, number>();
    groups.forEach((group, g) => {
      for (const id of group) {
        if (of.has(id) && of.get(id) !== g) throw new TypeError(`partition: replica ${id} is in two groups`);
        of.set(id, g);
      }
    });
    this.isolated.clear();
    this.groups = of;
  }

  /** Removes every partition and isolation. Messages in flight that were not yet lost arrive. */
  heal(): void {
    this.isolated.clear();
    this.groups = undefined;
  }

  /**
   * Crashes `id`: its messages in flight are lost, messages sent to it are dropped until it
   * restarts, and its cluster's `halt()` returns true (its replica's `start()` returns). Messages
   * it sent before the crash are already on the wire and still arrive. Does nothing if `id` is down.
   */
  crash(id: ReplicaId): void {
    const node = this.node(id);
    if (!node.up) return;
    node.up = false;
    node.endpoint.retired = true;
    this.counts.dropped += node.inbox.size;
    node.inbox.clear();
  }

  /**
   * Brings `id` up again and returns its new cluster; build a new replica on it with the same
   * storage to model a restart after a crash. Restarting a node that is up crashes it first.
   */
  restart(id: ReplicaId): LocalCluster<T, D> {
    this.crash(id);
    const node = this.node(id);
    node.up = true;
    node.endpoint = new Endpoint(id, this, this.wire);
    return node.endpoint;
  }

  /** Stops the run: every cluster's `halt()` returns true from now on, and no message moves. */
  stop(): void {
    this.isStopped = true;
  }

  private node(id: ReplicaId): Node<T, D> {
    let node = this.nodes.get(id);
    if (node === undefined) {
      node = { up: true, endpoint: new Endpoint(id, this, this.wire), inbox: new Inbox() };
      this.nodes.set(id, node);
    }
    return node;
  }

  private connected(a: ReplicaId, b: ReplicaId): boolean {
    if (a === b) return true;
    if (this.isolated.has(a) || this.isolated.has(b)) return false;
    if (this.groups === undefined) return true;
    const g = this.groups.get(a);
    return g !== undefined && g === this.groups.get(b);
  }

  private send(from: Endpoint<T, D>, to: ReplicaId, message: Message<T, D>): void {
    this.counts.sent++;
    // Copy first, even if the message is then dropped, so that an uncloneable message fails
    // every time rather than only when the dice let it through.
    const copy = structuredClone(message);
    const dest = this.nodes.get(to);
    const f = this.faults;
    if (from.halt() || dest === undefined || !dest.up || !this.connected(from.id, to) || this.random() < f.loss) {
      this.counts.dropped++;
      return;
    }
    this.enqueue(dest, from.id, copy);
    if (this.random() < f.duplication) {
      this.counts.duplicated++;
      this.enqueue(dest, from.id, structuredClone(message));
    }
  }

  private enqueue(dest: Node<T, D>, from: ReplicaId, message: Message<T, D>): void {
    const { minDelay, maxDelay } = this.faults;
    const deliverAt = this.time + minDelay + this.random() * (maxDelay - minDelay);
    dest.inbox.push({ deliverAt, seq: this.seq++, from, message });
  }

  private receive(at: Endpoint<T, D>): Message<T, D>[] {
    if (at.halt()) return [];
    const inbox = this.node(at.id).inbox;
    const out: Message<T, D>[] = [];
    for (let e = inbox.peek(); e !== undefined && e.deliverAt <= this.time; e = inbox.peek()) {
      inbox.pop();
      // Connectivity is checked again on arrival: a partition cuts messages already in flight.
      if (this.connected(e.from, at.id)) {
        out.push(e.message);
        this.counts.delivered++;
      } else {
        this.counts.dropped++;
      }
    }
    return out;
  }
}
