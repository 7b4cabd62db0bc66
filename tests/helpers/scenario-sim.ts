import type { Message } from '../../src/index.js';
import { Simulation, raftOf, type SimNode, type SimulationOptions } from './simulation.js';
import type { TestSnapshotData, TestTransition } from './recording-state-machine.js';

export type TestMessage = Message<TestTransition, TestSnapshotData>;

/** One message handed to a cluster by a replica, as seen before the network. */
export interface SentRecord {
  readonly at: number;
  readonly from: number;
  readonly to: number;
  readonly message: TestMessage;
}

/**
 * A {@link Simulation} that also records every message each replica sends (before the network
 * may drop it) and can slip arbitrary objects into a replica's next `receiveMessages()`.
 * It wraps each incarnation's cluster object in place, so the replica sees the wrapped methods.
 */
export class ScenarioSimulation extends Simulation {
  readonly sent: SentRecord[] = [];
  private readonly injected = new Map<number, unknown[]>();

  constructor(options: SimulationOptions) {
    super(options);
    for (const id of this.ids) this.tap(id);
  }

  override restart(id: number): void {
    const wasUp = this.node(id).up;
    super.restart(id);
    if (!wasUp) this.tap(id);
  }

  /** Makes `id`'s next receiveMessages() also return these objects (after the real messages). */
  inject(id: number, ...messages: unknown[]): void {
    const list = this.injected.get(id) ?? [];
    list.push(...messages);
    this.injected.set(id, list);
  }

  /** The live nodes. */
  live(): SimNode[] {
    return [...this.nodes.values()].filter((n) => n.up);
  }

  /** Messages sent at or after virtual time `t`. */
  sentSince(t: number): SentRecord[] {
    return this.sent.filter((r) => r.at >= t);
  }

  /** `index:term:id` of every entry in `id`'s in-memory log above its snapshot. */
  logOf(id: number): string[] {
    const raft = raftOf(this.node(id).replica);
    if (!raft) return [];
    const out: string[] = [];
    for (let i = raft.log.snapshotIndex + 1; i <= raft.log.lastIndex; i++) {
      const e = raft.log.entry(i)!;
      out.push(`${i}:${e.term}:${e.transition.id}`);
    }
    return out;
  }

  /** Runs until every node in `ids` has applied every id in `txIds`. */
  async untilApplied(ids: number[], txIds: string[], ms: number, what = 'commands applied'): Promise<void> {
    await this.runUntil(() => ids.every((id) => {
      const applied = new Set(this.node(id).sm.appliedIds);
      return txIds.every((t) => applied.has(t));
    }), ms, what);
  }

  private tap(id: number): void {
    const cluster = this.node(id).cluster;
    const send = cluster.sendMessage.bind(cluster);
    const receive = cluster.receiveMessages.bind(cluster);
    cluster.sendMessage = (to, message) => {
      this.sent.push({ at: this.now, from: id, to, message });
      send(to, message);
    };
    cluster.receiveMessages = () => {
      const real = receive() as TestMessage[];
      const extra = this.injected.get(id);
      if (!extra) return real;
      this.injected.delete(id);
      return [...real, ...(extra as TestMessage[])];
    };
  }
}

/** Ids `${prefix}0` .. `${prefix}${n-1}` as transitions. */
export function commands(prefix: string, n: number): TestTransition[] {
  return Array.from({ length: n }, (_, i) => ({ id: `${prefix}${i}` }));
}
