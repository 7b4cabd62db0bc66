import type { Codec } from '../core/codec.js';
import type { Message } from '../core/message.js';
import type { ReplicaId, StateMachineTransition } from '../core/types.js';
import { msgpackCodec } from '../transport/codec.js';
import { fromWire, toWire } from '../transport/compact-append.js';
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

  /**
   * @param options - As for {@link TcpCluster}: `id` is the process's id; the codec is wrapped by
   * {@link envelopeCodec}, which carries appends in columns.
   * @throws TypeError as {@link TcpCluster} does, and if `options.codec.name` is over 59 characters.
   */
  constructor(options: TcpClusterOptions) {
    this.tcp = new TcpCluster<T, D>({ ...options, codec: envelopeCodec(options.codec), accept: isValidEnvelope });
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

/** What {@link envelopeCodec} adds to a codec's name. */
const ENVELOPE_FORMAT = '+env2';

/**
 * The codec of a {@link TcpHostNetwork}'s connections: `codec`, with every AppendEntries inside an
 * envelope in columns, as it travels alone on a {@link TcpCluster} (compact-append.ts: as maps,
 * with many groups most of a frame, they took twice the bytes and the time to encode and decode).
 * Its name adds the envelope's form to `codec`'s, and names are compared at the handshake: a peer
 * that speaks another form, such as a build from before appends travelled in columns, is refused
 * with a codec mismatch instead of connecting and having its appends dropped. Columns that do not
 * make an append are dropped on decoding, and the rest of the envelope is kept. A plain
 * {@link TcpCluster} that talks to a host (a test's rogue peer) uses it too.
 * @throws TypeError if `codec.name` is over 59 characters.
 */
export function envelopeCodec(codec: Codec = msgpackCodec): Codec {
  const c = codec as Partial<Codec> | null;
  const name = c?.name ?? 'custom';
  // Not a codec, or a name that is not a string: left as it is, for TcpCluster's check to say what is wrong.
  if (typeof c?.encode !== 'function' || typeof c.decode !== 'function' || typeof name !== 'string') return codec;
  const room = 64 - ENVELOPE_FORMAT.length;
  if (name.length > room) throw new TypeError(`TcpHostNetwork: options.codec.name must be at most ${room} characters`);
  return {
    name: `${name}${ENVELOPE_FORMAT}`,
    encode: (value) => codec.encode(mapMessages(value, toWire)),
    decode: (bytes) => mapMessages(codec.decode(bytes), fromWire),
  };
}

/**
 * An envelope-shaped value with `f` applied to each of its messages, those for which `f` throws
 * left out; anything else as it is (the transport's `accept` judges it).
 */
function mapMessages(value: unknown, f: (message: unknown) => unknown): unknown {
  const e = value as { messages?: unknown } | null;
  if (typeof e !== 'object' || e === null || !Array.isArray(e.messages)) return value;
  const messages: unknown[] = [];
  for (const pair of e.messages as unknown[]) {
    if (!Array.isArray(pair) || pair.length !== 2) messages.push(pair);
    else
      try {
        messages.push([pair[0], f(pair[1])]);
      } catch {
        // Columns that do not make an append: the other messages of the envelope are still good.
      }
  }
  return { ...e, messages };
}
