/**
 * Per-frame authentication after the handshake, so that frames cannot be forged, replayed,
 * reordered or dropped by anyone on the path who does not know the cluster secret (TLS or not).
 *
 * Each direction of a connection has its own key, derived from the secret and the handshake
 * transcript (both ids, both fresh nonces, the codec), so a key is good for one direction of one
 * connection only. Every frame after the handshake is `kind ‖ body ‖ tag`, where
 * `tag = HMAC-SHA256(key, seq ‖ kind ‖ body)` cut to {@link TAG_BYTES} and `seq` is the frame's
 * position in its direction (0, 1, 2, …), counted by both sides and never sent: a frame injected,
 * replayed, reordered, dropped or moved to another connection fails the check. The kind byte
 * tells replica messages from the transport's own control frames (see {@link FrameKind}).
 *
 * Small messages sent together travel as one batch frame (one MAC for all): an HMAC costs a few
 * microseconds of fixed overhead, as much as encoding a small message, so one per message would
 * cut small-message throughput several times over; one per batch keeps it within noise.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { FRAME_HEADER_BYTES } from './frame.js';
import { transcriptMac, type HandshakeRole, type Transcript } from './handshake.js';

/** Bytes of the tag at the end of every authenticated frame. */
export const TAG_BYTES = 16;
/** Bytes an authenticated frame adds to its body: the kind byte and the tag. */
export const SEAL_OVERHEAD = 1 + TAG_BYTES;

/** What an authenticated frame carries. */
export const FrameKind = {
  /** A replica message, encoded by the codec. */
  message: 0,
  /** The acceptor lets the dialer in (the first frame from the acceptor). */
  welcome: 1,
  /** The acceptor refuses the dialer; the body is the reason (UTF-8). Then it closes. */
  refused: 2,
  /** Are you there? Answered by a pong. */
  ping: 3,
  /** The answer to a ping. */
  pong: 4,
  /** Several replica messages, each a 4-byte length and its bytes (see {@link splitBatch}). */
  batch: 5,
} as const;
/** One of the values of {@link FrameKind}. */
export type FrameKind = (typeof FrameKind)[keyof typeof FrameKind];

const LABEL = Buffer.from('tickraft-frame-v1', 'ascii');

/** The key for frames sent by `sender` on the connection of transcript `t`. */
export function frameKey(secret: Buffer, sender: HandshakeRole, t: Transcript): Buffer {
  return transcriptMac(secret, LABEL, sender, t);
}

function tag(key: Buffer, seq: number, kind: number, body: Uint8Array): Buffer {
  const prefix = Buffer.allocUnsafe(9);
  prefix.writeUIntBE(Math.floor(seq / 2 ** 32), 0, 4);
  prefix.writeUInt32BE(seq % 2 ** 32, 4);
  prefix[8] = kind;
  return createHmac('sha256', key).update(prefix).update(body).digest().subarray(0, TAG_BYTES);
}

/** Seals the frames one side sends on one connection, numbering them as they are sealed. */
export class FrameSealer {
  private seq = 0;
  constructor(private readonly key: Buffer) {}

  /**
   * One frame as three parts to write in this order: length header and kind, the body itself
   * (not copied: large bodies go to the socket as they are), the tag. Seal each frame just before
   * writing it, so the order on the wire is the order of sealing.
   */
  seal(kind: FrameKind, body: Uint8Array): [Buffer, Uint8Array, Buffer] {
    const head = Buffer.allocUnsafe(FRAME_HEADER_BYTES + 1);
    head.writeUInt32BE(body.byteLength + SEAL_OVERHEAD, 0);
    head[FRAME_HEADER_BYTES] = kind;
    return [head, body, tag(this.key, this.seq++, kind, body)];
  }

  /**
   * Messages as one frame in one buffer (one socket write, one MAC), each body copied once: a
   * message frame for one, a batch frame for more. The frame's body is
   * {@link batchBytes}`(bodies)` long: the caller keeps that within the receiver's limit.
   */
  sealMessages(bodies: readonly Uint8Array[]): Buffer {
    if (bodies.length === 1) return Buffer.concat(this.seal(FrameKind.message, bodies[0] as Uint8Array));
    const inner = batchBytes(bodies);
    const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + SEAL_OVERHEAD + inner);
    out.writeUInt32BE(inner + SEAL_OVERHEAD, 0);
    out[FRAME_HEADER_BYTES] = FrameKind.batch;
    let at = FRAME_HEADER_BYTES + 1;
    for (const b of bodies) {
      out.writeUInt32BE(b.byteLength, at);
      out.set(b, at + FRAME_HEADER_BYTES);
      at += FRAME_HEADER_BYTES + b.byteLength;
    }
    const body = out.subarray(FRAME_HEADER_BYTES + 1, at);
    tag(this.key, this.seq++, FrameKind.batch, body).copy(out, at);
    return out;
  }
}

/** The body length of the frame {@link FrameSealer.sealMessages} makes of `bodies`. */
export function batchBytes(bodies: readonly Uint8Array[]): number {
  if (bodies.length === 1) return (bodies[0] as Uint8Array).byteLength;
  let total = 0;
  for (const b of bodies) total += FRAME_HEADER_BYTES + b.byteLength;
  return total;
}

/** The messages of a batch frame's body (views, not copies); undefined if it is not well formed. */
export function splitBatch(body: Buffer): Buffer[] | undefined {
  const out: Buffer[] = [];
  for (let at = 0; at < body.length;) {
    if (body.length - at < FRAME_HEADER_BYTES) return undefined;
    const length = body.readUInt32BE(at);
    at += FRAME_HEADER_BYTES;
    if (length > body.length - at) return undefined;
    out.push(body.subarray(at, at + length));
    at += length;
  }
  return out;
}

/** An authenticated frame, opened. */
export interface OpenedFrame {
  readonly kind: number;
  /** A view of the frame (not a copy). */
  readonly body: Buffer;
}

/** Checks the frames one side receives on one connection, in order. */
export class FrameOpener {
  private seq = 0;
  constructor(private readonly key: Buffer) {}

  /** The frame's kind and body if its tag is right for the next position; undefined if not (forged). */
  open(frame: Buffer): OpenedFrame | undefined {
    if (frame.length < SEAL_OVERHEAD) return undefined;
    const kind = frame[0] as number;
    const body = frame.subarray(1, frame.length - TAG_BYTES);
    const expected = tag(this.key, this.seq, kind, body);
    if (!timingSafeEqual(expected, frame.subarray(frame.length - TAG_BYTES))) return undefined;
    this.seq++;
    return { kind, body };
  }
}
