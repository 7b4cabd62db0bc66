import type { Message } from '../core/message.js';
import type { ReplicaId, StateMachineTransition } from '../core/types.js';
import { TcpCluster } from '../transport/tcp.js';
import type { TcpClusterOptions } from '../transport/tcp-options.js';
import { isValidEnvelope, type Envelope, type HostNetwork } from './envelope.js';

/**
 * The {@link HostNetwork} of a `RaftHost` (`tickraft/multi`) over TCP: one {@link TcpCluster} per process, so
 * one authenticated connection per peer process (optionally TLS) for all groups, and one frame
 * per envelope, that is per peer per tick. Every frame is authenticated, size-checked and decoded
 * defensively as for a single group; instead of a Raft message it must hold an envelope sent by
 * the authenticated peer, and each message inside is validated by its group's replica.
 *
 * @example
 * ```ts
 * const network = new TcpHostNetwork<Cmd>({ id: 1, listen: { host: '0.0.0.0', port: 7001 }, secret, peers });
 * await network.tcp.listen();
 * const host = new RaftHost<Cmd>({ id: 1, network });
 * void host.start();
 * ```
 */
export class TcpHostNetwork<T extends StateMachineTransition, D = unknown> implements HostNetwork<T, D> {
  /** The transport: listen, add peers, read its stats and close it here. */
  readonly tcp: TcpCluster<T, D>;

  /** @param options - As for {@link TcpCluster}: `id` is the process's id. */
  constructor(options: TcpClusterOptions) {
    this.tcp = new TcpCluster<T, D>({ ...options, accept: isValidEnvelope });
  }

  /** Queues an envelope for process `to` (one frame). */
  send(to: ReplicaId, envelope: Envelope<T, D>): void {
    // The connection carries any value its `accept` lets in: an envelope rides where a message would.
    this.tcp.sendMessage(to, envelope as unknown as Message<T, D>);
  }

  /** The envelopes received since the last call. */
  receive(): Envelope<T, D>[] {
    return this.tcp.receiveMessages() as unknown as Envelope<T, D>[];
  }

  /** True once the transport is closed. */
  halt(): boolean {
    return this.tcp.halt();
  }

  /** Wakes the host's loop when a frame arrives. */
  registerWakeup(wake: () => void): void {
    this.tcp.registerWakeup(wake);
  }
}
