import { Packr } from 'msgpackr';

/**
 * Turns messages into bytes and back. `decode` sees bytes from the network: it may throw on
 * malformed input (the transport catches it and drops the connection), and whatever it returns
 * is validated before it reaches the replica.
 */
export interface MessageCodec {
  /**
   * Names the wire format. Peers compare names at the handshake, so replicas that disagree on the
   * codec refuse each other with a clear reason rather than exchange undecodable frames.
   * @defaultValue `'custom'`
   */
  readonly name?: string;
  /** Serializes one message. */
  encode(message: unknown): Uint8Array;
  /** Parses one frame's bytes; may throw on malformed input. */
  decode(bytes: Uint8Array): unknown;
}

const asBuffer = (bytes: Uint8Array): Buffer =>
  Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

/** JSON in UTF-8: readable on the wire and dependency-free, about 1.5× slower than {@link msgpackCodec}. */
export const jsonCodec: MessageCodec = {
  name: 'json',
  encode: (message) => Buffer.from(JSON.stringify(message), 'utf8'),
  decode: (bytes) => JSON.parse(asBuffer(bytes).toString('utf8')) as unknown,
};

// Plain MessagePack maps (no msgpackr records): every message is self-contained and readable by
// any MessagePack implementation. msgpackr renames a decoded `__proto__` key, so input cannot
// reach an object's prototype.
const packr = new Packr({ useRecords: false, mapsAsObjects: true });

/** MessagePack via msgpackr: the default. Faster than JSON and about 25% smaller on log entries. */
export const msgpackCodec: MessageCodec = {
  name: 'msgpack',
  encode: (message) => packr.pack(message),
  decode: (bytes) => packr.unpack(asBuffer(bytes)) as unknown,
};
