import type { Codec } from '../core/codec.js';
import type { Message } from '../core/message.js';
import type { ReplicaId, StateMachineTransition } from '../core/types.js';
import { msgpackCodec } from '../transport/codec.js';
import { fromWire, toWire } from '../transport/compact-append.js';
import { TcpCluster } from '../transport/tcp.js';
import type { TcpClusterOptions } from '../transport/tcp-options.js';
import { isValidEnvelope, type Envelope, type GroupId, type HostNetwork } from './envelope.js';

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

  /**
   * @param options - As for {@link TcpCluster}: `id` is the process's id; the codec is wrapped by
   * {@link envelopeCodec}.
   * @throws TypeError as {@link TcpCluster} does, and if `options.codec.name` is over 59 characters.
   */
  constructor(options: TcpClusterOptions) {
    this.tcp = new TcpCluster<T, D>({ ...options, codec: envelopeCodec(options.codec), accept: isValidEnvelope });
  }

  /**
   * Queues an envelope for process `to` (one frame). An AppendEntries with entries rides in it in
   * columns, as it does alone on a {@link TcpCluster} (compact-append.ts): with many groups most
   * of a frame is such appends, and as maps they took twice the bytes and the time to encode and
   * decode.
   */
  send(to: ReplicaId, envelope: Envelope<T, D>): void {
    const messages = envelope.messages.map(([g, m]): [GroupId, unknown] => [g, toWire(m)]);
    // The connection carries any value its `accept` lets in: an envelope rides where a message would.
    this.tcp.sendMessage(to, { ...envelope, messages } as unknown as Message<T, D>);
  }

  /**
   * The envelopes received since the last call, their appends rebuilt from columns. A malformed
   * one is dropped (as a malformed frame is); the rest of its envelope is kept.
   */
  receive(): Envelope<T, D>[] {
    const envelopes = this.tcp.receiveMessages() as unknown as Envelope<T, D>[];
    for (const e of envelopes) {
      const messages = e.messages as [GroupId, unknown][];
      let kept = 0;
      for (const pair of messages) {
        try {
          pair[1] = fromWire(pair[1]);
          messages[kept++] = pair;
        } catch {
          // Not an append after all: the other messages of the envelope are still good.
        }
      }
      messages.length = kept;
    }
    return envelopes;
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

/** What {@link envelopeCodec} adds to a codec's name. */
const ENVELOPE_FORMAT = '+env2';

/**
 * The codec of a {@link TcpHostNetwork}'s connections: `codec` under a name that also names the
 * envelope's form (appends in columns inside it), compared at the handshake like any codec name.
 * So a peer that speaks another envelope form, such as a build from before appends travelled in
 * columns, is refused with a codec mismatch instead of connecting and having its appends dropped.
 * A plain {@link TcpCluster} that wants to talk to a host (a test's rogue peer) uses it too.
 * @throws TypeError if `codec.name` is over 59 characters.
 */
export function envelopeCodec(codec: Codec = msgpackCodec): Codec {
  const c = codec as Partial<Codec> | null;
  const name = c?.name ?? 'custom';
  // Not a codec, or a name that is not a string: left as it is, for TcpCluster's check to say what is wrong.
  if (typeof c?.encode !== 'function' || typeof c.decode !== 'function' || typeof name !== 'string') return codec;
  const room = 64 - ENVELOPE_FORMAT.length;
  if (name.length > room) throw new TypeError(`TcpHostNetwork: options.codec.name must be at most ${room} characters`);
  return { name: `${name}${ENVELOPE_FORMAT}`, encode: (m) => codec.encode(m), decode: (bytes) => codec.decode(bytes) };
}
