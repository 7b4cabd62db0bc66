import { Packr } from 'msgpackr';
import type { Codec } from '../core/codec.js';
import { fromWire, toWire } from './compact-append.js';

/** @deprecated The same interface as {@link Codec}, under its transport-only name: use {@link Codec}. */
export type MessageCodec = Codec;

const asBuffer = (bytes: Uint8Array): Buffer =>
  Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

/** JSON in UTF-8: readable on the wire and dependency-free, about 1.5× slower than {@link msgpackCodec}. */
export const jsonCodec: Codec = {
  name: 'json',
  encode: (message) => Buffer.from(JSON.stringify(message), 'utf8'),
  decode: (bytes) => JSON.parse(asBuffer(bytes).toString('utf8')) as unknown,
};

// MessagePack maps (no msgpackr records): every message is self-contained and readable by any
// MessagePack implementation. An AppendEntries with entries travels in columns
// (compact-append.ts). msgpackr renames a decoded `__proto__` key, so input cannot reach an
// object's prototype.
const packr = new Packr({ useRecords: false, mapsAsObjects: true });

/**
 * MessagePack via msgpackr: the default. Messages are maps, except an AppendEntries with entries,
 * sent as columns (one array per field, the indexes implied, and transitions of one shape one
 * column per key): less than half the bytes of maps and about twice as fast to encode and
 * decode. An append with an entry that has a field the core's types do not name goes as a map.
 * Its name is `msgpack/3`, so a peer with an earlier format (all maps, or transitions always as
 * maps) is refused at the handshake rather than sent frames it cannot read.
 */
export const msgpackCodec: Codec = {
  name: 'msgpack/3',
  encode: (message) => packr.pack(toWire(message)),
  decode: (bytes) => fromWire(packr.unpack(asBuffer(bytes))),
};
