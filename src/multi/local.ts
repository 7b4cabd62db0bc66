import type { Message } from '../core/message.js';
import type { StateMachineTransition } from '../core/types.js';
import type { LocalCluster } from '../sim/local-network.js';
import type { Envelope, HostNetwork } from './envelope.js';

/**
 * A {@link HostNetwork} over one node of a {@link LocalNetwork}: the node stands for a whole
 * process, and each envelope travels as one message, so the network's seeded delays, loss,
 * duplication, partitions and crash/restart apply to processes. Build the network with `any`
 * (or the envelope type) as its message type; it copies what it carries with `structuredClone`
 * and looks at nothing inside.
 *
 * @example
 * ```ts
 * const net = new LocalNetwork<any>({ seed: 7 });
 * const host = new RaftHost<Cmd>({ id: 1, network: localHostNetwork(net.cluster(1)), clock: net.clock });
 * ```
 */
export function localHostNetwork<T extends StateMachineTransition, D = unknown>(
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  cluster: LocalCluster<any, any>,
): HostNetwork<T, D> {
  return {
    // The network carries any plain data: an envelope rides where a message would.
    send: (to, envelope) => cluster.sendMessage(to, envelope as unknown as Message<T, D>),
    receive: () => cluster.receiveMessages() as unknown as Envelope<T, D>[],
    halt: () => cluster.halt(),
  };
}
