import {
  Simulation,
  raftOf,
  type SentRecord,
  type SimNode,
  type SimulationOptions,
  type TestMessage,
} from './simulation.js';
import type { TestTransition } from './recording-state-machine.js';

export type { SentRecord, TestMessage };

/**
 * A {@link Simulation} that records every message each replica sends (before the network may
 * drop it: `recordSent`) and can slip arbitrary objects into a replica's next
 * `receiveMessages()`. It wraps each incarnation's cluster object in place, so the replica sees
 * the wrapped method.
 */
export class ScenarioSimulation extends Simulation {
  private readonly injected = new Map<number, unknown[]>();

  constructor(options: SimulationOptions) {
    super({ ...options, recordSent: true });
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

  private tap(id: number): void {
    const cluster = this.node(id).cluster;
    const receive = cluster.receiveMessages.bind(cluster);
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
