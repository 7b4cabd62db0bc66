/**
 * Turns plain-data values into bytes and back: the one format interface of the package. The TCP
 * transport encodes each message with it, and `FileStorage` its log entries and snapshot data,
 * so one codec object serves both (`jsonCodec` and `msgpackCodec` from `tickraft/tcp`, or
 * `jsonStorageCodec`).
 *
 * `decode(encode(v))` must give back a value equal to `v`: a field the codec cannot represent is
 * lost. `decode` may see bytes from the network or a damaged disk, so it may throw on malformed
 * input; whatever it returns is validated before it is used.
 */
export interface Codec {
  /**
   * Names the format. Peers compare names at the TCP handshake, so replicas that disagree on the
   * codec refuse each other with a clear reason rather than exchange undecodable frames.
   * `FileStorage` does not read it.
   * @defaultValue `'custom'`
   */
  readonly name?: string;
  /** Serializes one plain-data value (a message, an array of log entries, snapshot data; never `undefined`). */
  encode(value: unknown): Uint8Array;
  /** Reverses {@link Codec.encode}; may throw on malformed input. */
  decode(bytes: Uint8Array): unknown;
}
