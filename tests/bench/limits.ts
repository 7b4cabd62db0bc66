/**
 * The machine's primitives, measured in the same run for context (the JSON's `limits`). They are
 * not what tickraft's figures are divided by: that is the replication skeleton (skeleton.ts),
 * which does the whole job at each concurrency. These say what the parts cost:
 * - an in-process leader → 2 followers → ack round in plain JS (no Raft code): closed-loop
 *   clients, everything pending goes into one batch, replicas wake each other with
 *   setImmediate exactly like `Replica.start()` does; the floor of the event loop;
 * - a loopback TCP round trip (one small frame to an echo process and back) and the rate of
 *   small frames (80-byte payloads, like a one-entry AppendEntries) one process can push to
 *   another, using the transport's own framing;
 * - fsync group commit: one write + fdatasync per batch of 16-byte records into one file.
 */
import { fork } from 'node:child_process';
import { closeSync, fdatasyncSync, openSync, rmSync, writeSync, constants } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { encodeFrames, FrameDecoder } from '../../src/transport/frame.js';
import { benchTemp } from './disk.js';
import { SERVER_JS, track } from './children.js';
import { sleep } from './workload.js';

export interface Limits {
  inprocessRoundsPerSec: number;
  tcpRoundTripP50Us: number;
  tcpFramesPerSec: number;
  fsyncGroupCommitRecordsPerSec: number;
}

/** Extra figures printed beside the JSON's limits. */
export interface LimitDetails {
  /** Entries per round of the in-process round at 64 in flight. */
  inprocessBatch: number;
  /** µs of one write + fdatasync of one small record (the c1 floor of a durable append). */
  fsyncP50Us: number;
}

/** Plain-JS replication rounds with `clients` closed-loop proposals; returns rounds/s and mean batch. */
async function jsRounds(clients: number, ms: number): Promise<{ rounds: number; batch: number }> {
  interface Node {
    inbox: unknown[][];
    log: unknown[];
    scheduled: boolean;
  }
  const nodes: Node[] = [0, 1, 2].map(() => ({ inbox: [], log: [], scheduled: false }));
  let pending: { id: number }[] = [];
  let nextId = 0;
  let acks = 0;
  let inRound = false;
  let rounds = 0;
  let entries = 0;
  let stop = false;
  const inflight: { id: number }[] = [];
  const wake = (i: number): void => {
    const n = nodes[i]!;
    if (n.scheduled) return;
    n.scheduled = true;
    setImmediate(() => {
      n.scheduled = false;
      tick(i);
    });
  };
  const tick = (i: number): void => {
    const n = nodes[i]!;
    const msgs = n.inbox;
    n.inbox = [];
    if (i === 0) {
      for (const m of msgs) if (m.length === 0) acks++;
      if (inRound && acks >= 1) {
        // Majority (leader + 1 follower): "apply" and let every client submit its next proposal.
        inRound = false;
        rounds++;
        entries += inflight.length;
        for (let k = inflight.length; k > 0; k--) if (!stop) pending.push({ id: nextId++ });
        inflight.length = 0;
      }
      if (!inRound && pending.length > 0) {
        const batch = pending;
        pending = [];
        for (const e of batch) {
          n.log.push(e);
          inflight.push(e);
        }
        inRound = true;
        acks = 0;
        for (const f of [1, 2]) {
          nodes[f]!.inbox.push(batch);
          wake(f);
        }
      }
      if (!stop && (inRound || pending.length > 0)) wake(0);
    } else {
      for (const m of msgs) {
        for (const e of m) n.log.push(e);
        nodes[0]!.inbox.push([]);
      }
      if (msgs.length > 0) wake(0);
    }
    if (n.log.length > 100_000) n.log.length = 0;
  };
  for (let k = 0; k < clients; k++) pending.push({ id: nextId++ });
  wake(0);
  await sleep(Math.min(200, ms / 2));
  const r0 = rounds;
  const e0 = entries;
  const t0 = performance.now();
  await sleep(ms);
  const seconds = (performance.now() - t0) / 1000;
  const r = rounds - r0;
  const batch = (entries - e0) / Math.max(1, r);
  stop = true;
  await sleep(5);
  return { rounds: r / seconds, batch };
}

/** An echo / sink process for the TCP limits: frames starting with byte 1 come back, others are counted. */
export async function echoServerMain(): Promise<void> {
  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    const decoder = new FrameDecoder(1 << 20);
    let count = 0;
    socket.on('data', (chunk: Buffer) => {
      decoder.push(chunk);
      const out: Uint8Array[] = [];
      for (let f = decoder.next(); f !== undefined; f = decoder.next()) {
        if (f[0] === 1) {
          const reply = Buffer.alloc(9);
          reply[0] = 1;
          reply.writeDoubleLE(count, 1);
          out.push(reply);
        } else count++;
      }
      if (out.length > 0) socket.write(encodeFrames(out));
    });
    socket.on('error', () => undefined);
  });
  server.listen(0, '127.0.0.1', () => process.send?.({ port: (server.address() as net.AddressInfo).port }));
  process.on('disconnect', () => process.exit(0));
}

async function tcpLimits(pings: number, streamMs: number): Promise<{ rttP50Us: number; framesPerSec: number }> {
  const child = track(fork(SERVER_JS, ['echo'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.once('message', (m) => resolve((m as { port: number }).port));
      child.once('exit', () => reject(new Error('bench: the echo process exited')));
    });
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.setNoDelay(true);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const decoder = new FrameDecoder(1 << 20);
    let onReply: ((count: number) => void) | undefined;
    socket.on('data', (chunk: Buffer) => {
      decoder.push(chunk);
      for (let f = decoder.next(); f !== undefined; f = decoder.next()) onReply?.(f.readDoubleLE(1));
    });
    const ping = encodeFrames([Buffer.from([1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])]);
    const roundTrip = (): Promise<number> =>
      new Promise((resolve) => {
        onReply = resolve;
        socket.write(ping);
      });
    const rtts = new Float64Array(pings);
    for (let i = 0; i < 200; i++) await roundTrip();
    for (let i = 0; i < pings; i++) {
      const t0 = performance.now();
      await roundTrip();
      rtts[i] = (performance.now() - t0) * 1000;
    }
    rtts.sort();
    // Stream of small frames, 256 per write, with backpressure; then a ping counts what arrived.
    const payload = Buffer.alloc(80, 2);
    const chunk = encodeFrames(Array.from({ length: 256 }, () => payload));
    const before = await roundTrip();
    const t0 = performance.now();
    while (performance.now() - t0 < streamMs) {
      if (!socket.write(chunk)) await new Promise((r) => socket.once('drain', r));
    }
    const after = await roundTrip();
    const seconds = (performance.now() - t0) / 1000;
    socket.destroy();
    return { rttP50Us: Math.round(rtts[Math.floor(pings / 2)]!), framesPerSec: Math.round((after - before) / seconds) };
  } finally {
    child.kill('SIGKILL');
  }
}

function fsyncLimits(ms: number): { recordsPerSec: number; fsyncP50Us: number } {
  const dir = benchTemp('tickraft-bench-fsync-');
  try {
    const fd = openSync(join(dir, 'log'), constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND);
    try {
      // One small record per write + fdatasync: the latency floor of a durable append.
      const one = Buffer.alloc(32, 1);
      const lat: number[] = [];
      let t0 = performance.now();
      while (performance.now() - t0 < ms / 2 || lat.length < 5) {
        const s = performance.now();
        writeSync(fd, one);
        fdatasyncSync(fd);
        lat.push((performance.now() - s) * 1000);
      }
      lat.sort((a, b) => a - b);
      // Group commit: 1024 records (16-byte header + 16-byte payload) per write + fdatasync.
      const batch = Buffer.alloc(1024 * 32, 1);
      let records = 0;
      t0 = performance.now();
      while (performance.now() - t0 < ms) {
        writeSync(fd, batch);
        fdatasyncSync(fd);
        records += 1024;
      }
      const seconds = (performance.now() - t0) / 1000;
      return { recordsPerSec: Math.round(records / seconds), fsyncP50Us: Math.round(lat[Math.floor(lat.length / 2)]!) };
    } finally {
      closeSync(fd);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Measures the primitives; `quick` shortens every measurement. */
export async function measureLimits(quick: boolean): Promise<{ limits: Limits; details: LimitDetails }> {
  const ms = quick ? 250 : 1000;
  const c64 = await jsRounds(64, ms);
  const tcp = await tcpLimits(quick ? 1000 : 5000, ms);
  const fs = fsyncLimits(ms);
  return {
    limits: {
      inprocessRoundsPerSec: Math.round(c64.rounds),
      tcpRoundTripP50Us: tcp.rttP50Us,
      tcpFramesPerSec: tcp.framesPerSec,
      fsyncGroupCommitRecordsPerSec: fs.recordsPerSec,
    },
    details: { inprocessBatch: Math.round(c64.batch * 10) / 10, fsyncP50Us: fs.fsyncP50Us },
  };
}
