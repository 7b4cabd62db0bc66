import type { Message } from './message.js';
import type { ReplicaId, StateMachineTransition } from './types.js';

/**
 * The replica's view of the network, implemented by a transport (for example
 * {@link LocalNetwork} or a TCP transport) or by the user.
 *
 * Calls are serialized with the state machine's (see {@link StateMachine}). None may block:
 * Raft tolerates loss, so a transport drops what it cannot deliver rather than wait.
 *
 * Messages, sent or received, must not be mutated: a message handed to `sendMessage` may share
 * its entries with the sender's log, and one returned by `receiveMessages` may be kept by the
 * receiver (an in-process transport may hand the same object over without a copy).
 *
 * A method that throws makes that tick reject with the error (and {@link Replica.start} with
 * it); the replica itself is unharmed and the next tick is a normal one. Messages that tick did
 * not receive or send are as if lost, which Raft repairs by retransmission.
 */
export interface Cluster<T extends StateMachineTransition, D = unknown> {
  /** Queues a message for a peer. Never blocks; may silently drop. */
  sendMessage(toId: ReplicaId, message: Message<T, D>): void;
  /** Returns every message received since the last call, each once. Never blocks. */
  receiveMessages(): Message<T, D>[] | Promise<Message<T, D>[]>;
  /** Asked before every round of {@link Replica.start}'s loop: `true` makes `start()` return. */
  halt(): boolean;
  /** Called when the known leader changes or becomes unknown (`undefined`). */
  registerLeader(leaderId: ReplicaId | undefined): void;
  /**
   * Optional. The replica hands over a function that ends its idle sleep; a transport calls it
   * when messages arrive, so a replica under {@link Replica.start} answers at network speed
   * rather than after `tickInterval`.
   */
  registerWakeup?(wake: () => void): void;
  /** @deprecated The old name of {@link Cluster.registerWakeup}, still called when that is absent. */
  setWakeup?(wake: () => void): void;
  /**
   * Optional. Told the voting members at start and whenever the replica's configuration
   * changes (membership changes take effect when their entry is appended), so a transport can
   * connect to new members and drop removed ones.
   */
  registerMembership?(memberIds: ReplicaId[]): void;
}
