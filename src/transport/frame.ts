/**
 * Length-prefixed framing over a byte stream: every frame is a 4-byte big-endian payload length
 * followed by the payload.
 */

/** Bytes of a frame header. */
export const FRAME_HEADER_BYTES = 4;
/** The largest length a header can state. */
export const MAX_FRAME_LENGTH = 0xffff_ffff;

const EMPTY = Buffer.alloc(0);

/** A header stated a payload longer than the decoder's limit. */
export class FrameTooLargeError extends Error {
  override readonly name = 'FrameTooLargeError';
  constructor(
    readonly length: number,
    readonly limit: number,
  ) {
    super(`frame of ${length} bytes exceeds the limit of ${limit} bytes`);
  }
}

/** The 4-byte header announcing a payload of `length` bytes. */
export function frameHeader(length: number): Buffer {
  const header = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  header.writeUInt32BE(length, 0);
  return header;
}

/** One frame (header and payload) in a single buffer. */
export function encodeFrame(payload: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.byteLength);
  frame.writeUInt32BE(payload.byteLength, 0);
  frame.set(payload, FRAME_HEADER_BYTES);
  return frame;
}

/**
 * Writes many payloads as frames into one buffer, so a batch costs one socket write. Every byte
 * is copied once.
 */
export function encodeFrames(payloads: readonly Uint8Array[]): Buffer {
  let total = 0;
  for (const p of payloads) total += FRAME_HEADER_BYTES + p.byteLength;
  const out = Buffer.allocUnsafe(total);
  let at = 0;
  for (const p of payloads) {
    out.writeUInt32BE(p.byteLength, at);
    out.set(p, at + FRAME_HEADER_BYTES);
    at += FRAME_HEADER_BYTES + p.byteLength;
  }
  return out;
}

/**
 * Splits a byte stream into frames. Chunks are kept as they arrive (never concatenated per
 * chunk): a frame that lies within one chunk is returned as a view of it without copying, and a
 * frame spread over several chunks is copied once into its own buffer. A header is checked
 * against the limit as soon as its 4 bytes are in, before any of its payload is buffered.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private head = 0; // index of the first chunk not wholly consumed
  private offset = 0; // bytes of chunks[head] already consumed
  private total = 0; // bytes buffered, not yet returned

  /** @param maxFrameBytes the largest payload accepted; may be changed between calls. */
  constructor(public maxFrameBytes: number) {}

  /** Bytes buffered that do not yet form a whole frame (after {@link next} returned undefined). */
  get buffered(): number {
    return this.total;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.total += chunk.length;
  }

  /**
   * The next complete frame's payload, or undefined until more bytes arrive.
   * @throws FrameTooLargeError when the next header exceeds {@link maxFrameBytes}.
   */
  next(): Buffer | undefined {
    if (this.total < FRAME_HEADER_BYTES) return undefined;
    const length = this.peekLength();
    if (length > this.maxFrameBytes) throw new FrameTooLargeError(length, this.maxFrameBytes);
    if (this.total < FRAME_HEADER_BYTES + length) return undefined;
    this.skip(FRAME_HEADER_BYTES);
    return this.take(length);
  }

  /** Forgets everything buffered. */
  reset(): void {
    this.chunks = [];
    this.head = 0;
    this.offset = 0;
    this.total = 0;
  }

  private peekLength(): number {
    const first = this.chunks[this.head] as Buffer;
    if (first.length - this.offset >= FRAME_HEADER_BYTES) return first.readUInt32BE(this.offset);
    // The header straddles chunks: gather its 4 bytes.
    let length = 0;
    let need = FRAME_HEADER_BYTES;
    let at = this.offset;
    for (let i = this.head; need > 0; i++, at = 0) {
      const chunk = this.chunks[i] as Buffer;
      for (; at < chunk.length && need > 0; at++, need--) length = length * 256 + (chunk[at] as number);
    }
    return length;
  }

  /** Moves past a wholly consumed first chunk (O(1); the array is compacted now and then). */
  private advance(): void {
    this.chunks[this.head++] = EMPTY;
    this.offset = 0;
    if (this.head === this.chunks.length) {
      this.chunks = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.chunks.length) {
      this.chunks = this.chunks.slice(this.head);
      this.head = 0;
    }
  }

  private skip(n: number): void {
    this.total -= n;
    while (n > 0) {
      const first = this.chunks[this.head] as Buffer;
      const left = first.length - this.offset;
      if (n < left) {
        this.offset += n;
        return;
      }
      n -= left;
      this.advance();
    }
  }

  private take(n: number): Buffer {
    this.total -= n;
    const first = this.chunks[this.head];
    if (first === undefined) return Buffer.alloc(0);
    const left = first.length - this.offset;
    if (n <= left) {
      const view = first.subarray(this.offset, this.offset + n);
      if (n === left) this.advance();
      else this.offset += n;
      return view;
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const chunk = this.chunks[this.head] as Buffer;
      const copied = chunk.copy(out, filled, this.offset, Math.min(chunk.length, this.offset + (n - filled)));
      filled += copied;
      if (this.offset + copied === chunk.length) this.advance();
      else this.offset += copied;
    }
    return out;
  }
}
