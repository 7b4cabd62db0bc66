import type { Codec } from '../core/codec.js';

/** @deprecated The same interface as {@link Codec}, under its storage-only name: use {@link Codec}. */
export type StorageCodec = Codec;

/**
 * The default {@link Codec} of `FileStorage`: UTF-8 JSON, matching the package's rule that
 * transitions and snapshot data survive a JSON round-trip.
 */
export const jsonStorageCodec: Codec = {
  encode(value: unknown): Uint8Array {
    return Buffer.from(JSON.stringify(value), 'utf8');
  },
  decode(bytes: Uint8Array): unknown {
    return JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  },
};
