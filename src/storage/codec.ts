/**
 * Turns the user's data (arrays of log entries, and snapshot data) into bytes for
 * `FileStorage` and back. `decode(encode(v))` must give back a value equal to `v`; a field
 * the codec cannot represent is lost on disk, so pick a codec that matches what the transitions
 * carry. The transport's codecs (`jsonCodec`, `msgpackCodec`) fit this interface too.
 */
export interface StorageCodec {
  /** Serializes a plain-data value: an array of log entries, or a snapshot's data (never `undefined`). */
  encode(value: unknown): Uint8Array;
  /** Reverses {@link StorageCodec.encode}. */
  decode(bytes: Uint8Array): unknown;
}

/**
 * The default {@link StorageCodec}: UTF-8 JSON, matching the package's rule that transitions and
 * snapshot data survive a JSON round-trip.
 */
export const jsonStorageCodec: StorageCodec = {
  encode(value: unknown): Uint8Array {
    return Buffer.from(JSON.stringify(value), 'utf8');
  },
  decode(bytes: Uint8Array): unknown {
    return JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  },
};
