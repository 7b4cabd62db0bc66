// Outbound batching: the messages queued for a peer leave, after the sender's synchronous burst,
// in a few large authenticated frames (frame-auth.ts) per peer rather than one write each.
import { encodeFrames, FRAME_HEADER_BYTES } from './frame.js';
import { FrameKind, type FrameSealer } from './frame-auth.js';
import type { Connection, Peer, TcpShared } from './tcp-link.js';

const MiB = 1024 * 1024;
/** Stop moving queued messages to a socket holding this much unsent data; resume on 'drain'. */
const SOCKET_HIGH_WATER = 4 * MiB;
/** Small frames are copied into batches of about this size, one socket write each. */
const BATCH_BYTES = 256 * 1024;
/** Frames at least this big are written as they are, not copied into a batch. */
const LARGE_FRAME = 64 * 1024;

/** The peers with something to send, flushed once per burst of sends. */
export class Outbound {
  private readonly dirty = new Set<Peer>();
  /** A flush is queued as a microtask: it runs once the sender's synchronous burst of sendMessage calls is over. */
  private flushScheduled = false;

  constructor(private readonly shared: TcpShared) {}

  /** Forgets a peer's pending flush (it is removed, retired, or the cluster is closing). */
  forget(peer: Peer): void {
    this.dirty.delete(peer);
  }

  /** Cancels every pending flush. */
  clear(): void {
    this.flushScheduled = false;
    this.dirty.clear();
  }

  /** Flushes `peer`'s queue once the current burst of sends is over. */
  schedule(peer: Peer): void {
    this.dirty.add(peer);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // A microtask rather than setImmediate: every message of a replica's tick is sent in one
    // synchronous loop, so they still leave in one write per peer, but without waiting for the
    // next turn of the event loop (one turn less per hop on the commit path).
    queueMicrotask(() => this.flushAll());
  }

  /** Once per burst of sends: moves each ready peer's queue to its socket in a few large writes. */
  private flushAll(): void {
    if (!this.flushScheduled) return;
    this.flushScheduled = false;
    for (const peer of this.dirty) this.flush(peer);
    this.dirty.clear();
  }

  private flush(peer: Peer): void {
    const c = peer.conn;
    if (c === undefined || c.stage !== 'open') return;
    const socket = c.socket;
    while (peer.queue.length > 0 && socket.writableLength < SOCKET_HIGH_WATER && !socket.destroyed) {
      const first = peer.queue.peek() as Uint8Array;
      if (first.byteLength >= LARGE_FRAME) {
        peer.queue.shift();
        socket.cork();
        for (const part of (c.sealer as FrameSealer).seal(FrameKind.message, first)) writeRaw(this.shared, c, part);
        socket.uncork();
        this.shared.counters.framesOut++;
        continue;
      }
      const batch: Uint8Array[] = [];
      let bytes = 0;
      for (
        let next = peer.queue.peek();
        next !== undefined && next.byteLength < LARGE_FRAME && bytes < BATCH_BYTES;
        next = peer.queue.peek()
      ) {
        // One authenticated frame carries the batch: it must fit the receiver's frame limit.
        if (batch.length > 0 && bytes + FRAME_HEADER_BYTES + next.byteLength > this.shared.options.maxFrameBytes) break;
        batch.push(next);
        bytes += FRAME_HEADER_BYTES + next.byteLength;
        peer.queue.shift();
      }
      writeRaw(this.shared, c, (c.sealer as FrameSealer).sealMessages(batch));
      this.shared.counters.framesOut += batch.length;
    }
  }

  /** Writes `payloads` as frames in one write. */
  write(c: Connection, payloads: Uint8Array[]): void {
    writeRaw(this.shared, c, encodeFrames(payloads));
  }

  /** Writes one authenticated control frame (after the handshake). */
  writeSealed(c: Connection, kind: FrameKind, body: Uint8Array): void {
    if (c.socket.destroyed) return;
    writeRaw(this.shared, c, Buffer.concat((c.sealer as FrameSealer).seal(kind, body)));
  }
}

/** Writes bytes to a connection that is still up, counting them. */
function writeRaw(shared: TcpShared, c: Connection, bytes: Uint8Array): void {
  if (c.socket.destroyed) return;
  shared.counters.bytesOut += bytes.byteLength;
  c.socket.write(bytes);
}
