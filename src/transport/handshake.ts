/**
 * The handshake by which two replicas prove to each other that they know the cluster secret,
 * before either accepts a message frame. Three frames:
 *
 * 1. dialer → acceptor: hello (dialer's id, the acceptor's id it expects, a fresh nonce, codec name),
 *    signed with the secret, so that the acceptor tells a peer from a stranger on its first frame
 *    and can keep strangers from crowding peers out (admission.ts);
 * 2. acceptor → dialer: hello (its own id, the dialer's id, a fresh nonce, codec name; signed), then its proof;
 * 3. dialer → acceptor: the dialer's proof, sent only once the acceptor's proof checks out;
 * 4. acceptor → dialer: the verdict, the first authenticated frame (frame-auth.ts): welcome, or
 *    refused (another live connection holds the dialer's id).
 *
 * A proof is HMAC-SHA256(secret, label ‖ role ‖ dialer id ‖ acceptor id ‖ dialer nonce ‖
 * acceptor nonce ‖ codec name). Both nonces are fresh per connection and each side checks the
 * proof against the nonce it chose, so a proof recorded on one connection fails on any other;
 * the role byte keeps the acceptor's proof from being reflected back as a dialer's; the ids bind
 * it to the pair of replicas that claimed them. Proofs are compared in constant time. A hello's
 * signature proves nothing about freshness (a recorded hello can be replayed): it only sorts
 * connections early; the proofs decide.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { ReplicaId } from '../core/types.js';

export type HandshakeRole = 'dialer' | 'acceptor';

export interface Hello {
  readonly role: HandshakeRole;
  /** The id of the replica sending the hello. */
  readonly sender: ReplicaId;
  /** The id the sender believes it is talking to. */
  readonly receiver: ReplicaId;
  readonly nonce: Buffer;
  readonly codec: string;
}

export const NONCE_BYTES = 32;
export const PROOF_BYTES = 32;
const MAGIC = Buffer.from('TKRF', 'ascii');
/** 2: frames after the handshake are authenticated (frame-auth.ts), and the acceptor sends a verdict. */
const VERSION = 2;
const MAX_CODEC_NAME = 64;
const HELLO_FIXED = MAGIC.length + 1 + 1 + 8 + 8 + NONCE_BYTES + 1;
/** Bytes of a hello's signature. */
const HELLO_TAG_BYTES = 16;
/** The largest frame either side sends before the handshake completes. */
export const MAX_HANDSHAKE_FRAME = HELLO_FIXED + MAX_CODEC_NAME + HELLO_TAG_BYTES;
const LABEL = Buffer.from('tickraft-auth-v1', 'ascii');
const HELLO_LABEL = Buffer.from('tickraft-hello-v1', 'ascii');
const ROLE_BYTE: Record<HandshakeRole, number> = { dialer: 0x44, acceptor: 0x41 };

export const newNonce = (): Buffer => randomBytes(NONCE_BYTES);

/** Whether `name` can travel in a hello: printable ASCII, 1 to 64 characters. */
export const isValidCodecName = (name: string): boolean => /^[\x20-\x7e]{1,64}$/.test(name);

const helloTag = (secret: Buffer, fields: Buffer): Buffer =>
  createHmac('sha256', secret).update(HELLO_LABEL).update(fields).digest().subarray(0, HELLO_TAG_BYTES);

/** A hello frame, signed with `secret`. */
export function encodeHello(hello: Hello, secret: Buffer): Buffer {
  const codec = Buffer.from(hello.codec, 'ascii');
  const out = Buffer.alloc(HELLO_FIXED + codec.length + HELLO_TAG_BYTES);
  let at = MAGIC.copy(out, 0);
  out[at++] = VERSION;
  out[at++] = ROLE_BYTE[hello.role];
  at = out.writeDoubleBE(hello.sender, at);
  at = out.writeDoubleBE(hello.receiver, at);
  at += hello.nonce.copy(out, at, 0, NONCE_BYTES);
  out[at++] = codec.length;
  at += codec.copy(out, at);
  helloTag(secret, out.subarray(0, at)).copy(out, at);
  return out;
}

/** Whether a well-formed hello frame was signed with `secret` (constant time). */
export function verifyHello(secret: Buffer, frame: Buffer): boolean {
  const end = frame.length - HELLO_TAG_BYTES;
  return end > 0 && timingSafeEqual(helloTag(secret, frame.subarray(0, end)), frame.subarray(end));
}

/** Parses a hello frame (not its signature); undefined if it is not a well-formed hello of this protocol version. */
export function decodeHello(frame: Buffer): Hello | undefined {
  if (frame.length < HELLO_FIXED || !frame.subarray(0, MAGIC.length).equals(MAGIC)) return undefined;
  let at = MAGIC.length;
  if (frame[at++] !== VERSION) return undefined;
  const roleByte = frame[at++];
  const role: HandshakeRole | undefined =
    roleByte === ROLE_BYTE.dialer ? 'dialer' : roleByte === ROLE_BYTE.acceptor ? 'acceptor' : undefined;
  const sender = frame.readDoubleBE(at);
  const receiver = frame.readDoubleBE(at + 8);
  at += 16;
  const nonce = Buffer.from(frame.subarray(at, at + NONCE_BYTES));
  at += NONCE_BYTES;
  const codecLength = frame[at++] as number;
  if (role === undefined || !Number.isSafeInteger(sender) || !Number.isSafeInteger(receiver)) return undefined;
  if (frame.length !== at + codecLength + HELLO_TAG_BYTES) return undefined;
  const codec = frame.toString('ascii', at, at + codecLength);
  if (!isValidCodecName(codec)) return undefined;
  return { role, sender, receiver, nonce, codec };
}

export interface Transcript {
  readonly dialer: ReplicaId;
  readonly acceptor: ReplicaId;
  readonly dialerNonce: Buffer;
  readonly acceptorNonce: Buffer;
  readonly codec: string;
}

/** The proof that `role` knows `secret`, for this connection's transcript. */
export function computeProof(secret: Buffer, role: HandshakeRole, t: Transcript): Buffer {
  return transcriptMac(secret, LABEL, role, t);
}

/**
 * An HMAC of the connection's whole transcript (both ids, both nonces, the codec) under `label`,
 * for `role`: the handshake's proofs and the per-frame keys are all made this way, told apart by
 * their labels, so no value of one can serve as another.
 */
export function transcriptMac(secret: Buffer, label: Buffer, role: HandshakeRole, t: Transcript): Buffer {
  const ids = Buffer.allocUnsafe(16);
  ids.writeDoubleBE(t.dialer, 0);
  ids.writeDoubleBE(t.acceptor, 8);
  return createHmac('sha256', secret)
    .update(label)
    .update(Buffer.of(ROLE_BYTE[role]))
    .update(ids)
    .update(t.dialerNonce)
    .update(t.acceptorNonce)
    .update(Buffer.from(t.codec, 'ascii'))
    .digest();
}

/** Checks a received proof in constant time. */
export function verifyProof(secret: Buffer, role: HandshakeRole, t: Transcript, proof: Buffer): boolean {
  const expected = computeProof(secret, role, t);
  return proof.length === expected.length && timingSafeEqual(proof, expected);
}
