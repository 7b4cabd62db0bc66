import type { Message } from '../core/message.js';
import type { ReplicaId, StateMachineTransition } from '../core/types.js';

/** A Raft group's id: a safe integer, the same on every process that hosts a member of the group. */
export type GroupId = number;

/**
 * What one process sends another in one tick of its {@link RaftHost}: every group's Raft messages
 * to that process, each tagged with its group, and the host's own notes on quiescence. One
 * envelope per peer per tick, whatever the number of groups; an empty one every
 * `livenessInterval` doubles as the process's heartbeat. Plain data: it survives `structuredClone`
 * and a JSON round-trip whenever the messages do.
 */
export interface Envelope<T extends StateMachineTransition, D = unknown> {
  /** The sending process (its id is its replica id in every group it hosts). */
  readonly from: ReplicaId;
  /** The sender's incarnation: a restarted process sends a higher one, so a quick restart is noticed. */
  readonly epoch: number;
  /** Raft messages, each with the group it belongs to. */
  readonly messages: [GroupId, Message<T, D>][];
  /** Groups whose leader (the sender) went quiet: `[group, term, last index]`. */
  readonly quiesce: [GroupId, number, number][];
  /** Groups the sender asks to wake (it could not quiesce with the leader, or has work). */
  readonly wake: GroupId[];
}

/**
 * How a {@link RaftHost} reaches the other processes: one link per process for all of its groups.
 * Like a {@link Cluster}, it never blocks and may drop (Raft repairs loss by retransmission).
 */
export interface HostNetwork<T extends StateMachineTransition, D = unknown> {
  /** Queues an envelope for process `to`. Never blocks; may silently drop. */
  send(to: ReplicaId, envelope: Envelope<T, D>): void;
  /** Returns every envelope received since the last call, each once. Never blocks. */
  receive(): Envelope<T, D>[];
  /** Optional: true once the host should stop ({@link RaftHost.start} then returns). */
  halt?(): boolean;
  /** Optional: the host hands over a function that ends its idle sleep; call it when an envelope arrives. */
  registerWakeup?(wake: () => void): void;
}

/** An envelope with nothing in it yet. */
export function emptyEnvelope<T extends StateMachineTransition, D>(from: ReplicaId, epoch: number): Envelope<T, D> {
  return { from, epoch, messages: [], quiesce: [], wake: [] };
}

const isInt = (v: unknown): v is number => Number.isSafeInteger(v);

/**
 * Whether `value` has the shape of an {@link Envelope} sent by process `from`: what a transport
 * checks before it hands an envelope to the host. The messages inside are checked by their group's
 * replica, as any message is (and a message whose `from` is not the envelope's is dropped by the host).
 */
export function isValidEnvelope(value: unknown, from: ReplicaId): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const e = value as Record<string, unknown>;
  if (e.from !== from || typeof e.epoch !== 'number' || !Number.isFinite(e.epoch)) return false;
  const { messages, quiesce, wake } = e;
  if (!Array.isArray(messages) || !Array.isArray(quiesce) || !Array.isArray(wake)) return false;
  for (const m of messages as unknown[])
    if (!Array.isArray(m) || m.length !== 2 || !isInt(m[0]) || typeof m[1] !== 'object' || m[1] === null) return false;
  for (const q of quiesce as unknown[]) if (!Array.isArray(q) || q.length !== 3 || !q.every(isInt)) return false;
  return (wake as unknown[]).every(isInt);
}
