/**
 * The ceiling: a port of `shared/limits/skeleton-3proc.mjs`, the fastest replication this
 * machine can do in plain Node.js, with the same semantics, so a fresh clone measures it in the
 * same run as tickraft. A fixed leader, no elections, no Raft rules; C closed-loop clients each
 * keep one 16-byte proposal in flight; every proposal of one event-loop turn goes into one
 * AppendEntries (hand-written binary frame, setImmediate flush), pipelined to both followers
 * without waiting for acks, committed at the quorum match index (leader + 1 follower). Followers
 * append and send one coalesced ack per socket read. With fsync, every replica appends the
 * encoded batch to its own file and fdatasyncs it before counting or acking (group commit: while
 * one fdatasync is in flight, new batches accumulate and go out in the next writev+fdatasync).
 * Transports: in-process (3 replicas in one process, queueMicrotask delivery) and TCP (leader
 * here, 2 forked follower processes, loopback, TCP_NODELAY).
 *
 * Differences from the script, none of which touches what is measured: the WAL files live in
 * the bench's chosen disk directory (see disk.ts) instead of os.tmpdir(); the follower runs as
 * server.ts's `skeleton-follower` mode; teardown waits for the followers to exit instead of a
 * fixed 400 ms; a run returns its figures instead of printing JSON lines.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { closeSync, fdatasync, openSync, rmSync, writev } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { SERVER_JS, track } from './children.js';
import { atMost, JIT_WARMUP_CLIENTS, jitWarmupFor, sleep, type Timing } from './workload.js';

/** One case of the skeleton: commits/s and commit latency (µs) like tickraft's figures. */
export interface SkeletonFigures {
  commitsPerSec: number;
  p50Us: number;
  p99Us: number;
  entriesPerAppend: number;
}

const T_AE = 1;
const T_ACK = 2;
const now = (): number => Number(process.hrtime.bigint()) / 1e6;

interface Entry {
  term: number;
  index: number;
  payload: Buffer;
}
interface Append {
  term: number;
  prevIndex: number;
  commit: number;
  entries: Entry[];
}

// AE frame: u32 len | u8 type | f64 term | f64 prevIndex | f64 commit | u32 n | n x (u32 term | u16 len | bytes)
function encodeAE(term: number, prevIndex: number, commit: number, entries: Entry[]): Buffer {
  let size = 4 + 1 + 24 + 4;
  for (let i = 0; i < entries.length; i++) size += 6 + entries[i]!.payload.length;
  const b = Buffer.allocUnsafe(size);
  b.writeUInt32LE(size - 4, 0);
  b[4] = T_AE;
  b.writeDoubleLE(term, 5);
  b.writeDoubleLE(prevIndex, 13);
  b.writeDoubleLE(commit, 21);
  b.writeUInt32LE(entries.length, 29);
  let o = 33;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    b.writeUInt32LE(e.term, o);
    b.writeUInt16LE(e.payload.length, o + 4);
    o += 6;
    e.payload.copy(b, o);
    o += e.payload.length;
  }
  return b;
}

function decodeAE(b: Buffer, s: number): Append {
  const term = b.readDoubleLE(s + 5),
    prevIndex = b.readDoubleLE(s + 13),
    commit = b.readDoubleLE(s + 21);
  const n = b.readUInt32LE(s + 29);
  const entries = new Array<Entry>(n);
  let o = s + 33;
  for (let i = 0; i < n; i++) {
    const t = b.readUInt32LE(o),
      len = b.readUInt16LE(o + 4);
    o += 6;
    entries[i] = { term: t, index: prevIndex + 1 + i, payload: b.subarray(o, o + len) };
    o += len;
  }
  return { term, prevIndex, commit, entries };
}

function encodeAck(match: number): Buffer {
  const b = Buffer.allocUnsafe(13);
  b.writeUInt32LE(9, 0);
  b[4] = T_ACK;
  b.writeDoubleLE(match, 5);
  return b;
}

function framer(onFrame: (b: Buffer, start: number, end: number) => void): (chunk: Buffer) => void {
  let rest: Buffer | null = null;
  return (chunk) => {
    if (rest) {
      chunk = Buffer.concat([rest, chunk]);
      rest = null;
    }
    let off = 0;
    const n = chunk.length;
    while (n - off >= 4) {
      const len = chunk.readUInt32LE(off);
      if (n - off - 4 < len) break;
      onFrame(chunk, off, off + 4 + len);
      off += 4 + len;
    }
    if (off < n) rest = chunk.subarray(off);
  };
}

/** Group commit: while one writev+fdatasync is in flight, new batches wait for the next. */
class Wal {
  private readonly fd: number;
  private pending: Buffer[] = [];
  private pendingLast = 0;
  private busy = false;
  private closed = false;
  syncs = 0;
  constructor(
    private readonly file: string,
    private readonly onDurable: (last: number) => void,
  ) {
    this.fd = openSync(file, 'a');
  }
  append(buf: Buffer, lastIndex: number): void {
    this.pending.push(buf);
    this.pendingLast = lastIndex;
    this.kick();
  }
  private kick(): void {
    if (this.busy || this.pending.length === 0 || this.closed) return;
    const bufs = this.pending,
      last = this.pendingLast;
    this.pending = [];
    this.busy = true;
    writev(this.fd, bufs, (err) => {
      if (err) {
        if (this.closed) return;
        throw err;
      }
      fdatasync(this.fd, (err2) => {
        if (err2) {
          if (this.closed) return;
          throw err2;
        }
        this.busy = false;
        this.syncs++;
        if (!this.closed) {
          this.onDurable(last);
          this.kick();
        }
      });
    });
  }
  close(): void {
    this.closed = true;
    const fd = this.fd;
    setTimeout(() => {
      try {
        closeSync(fd);
        rmSync(this.file, { force: true });
      } catch {
        /* already gone */
      }
    }, 200);
  }
}

class FollowerState {
  private log: Entry[] = [];
  private base = 0;
  readonly wal: Wal | null;
  constructor(
    walFile: string | null,
    private readonly sendAck: (last: number) => void,
  ) {
    this.wal = walFile ? new Wal(walFile, (last) => this.sendAck(last)) : null;
  }
  last(): number {
    return this.base + this.log.length;
  }
  appendEntries(m: Append, rawBuf: Buffer | null): void {
    if (m.prevIndex !== this.last()) throw new Error(`skeleton: gap ${m.prevIndex} vs ${this.last()}`);
    const es = m.entries;
    for (let i = 0; i < es.length; i++) this.log.push(es[i]!);
    if (this.log.length > 1 << 20) {
      this.base += this.log.length;
      this.log = [];
    }
    if (this.wal) this.wal.append(rawBuf!, this.last());
  }
}

/** The follower process (server.ts `skeleton-follower <0|1> <walDir>`). */
export function skeletonFollowerMain(fsyncOn: boolean, walDir: string): void {
  const hardStop = setTimeout(() => process.exit(3), 120_000);
  const wals: Wal[] = [];
  const srv = net.createServer((sock) => {
    sock.setNoDelay(true);
    const st = new FollowerState(fsyncOn ? join(walDir, `f-${process.pid}.wal`) : null, (last) =>
      sock.write(encodeAck(last)),
    );
    if (st.wal) wals.push(st.wal);
    const parse = framer((b, s, e) => {
      st.appendEntries(decodeAE(b, s), b.subarray(s, e));
    });
    sock.on('data', (chunk: Buffer) => {
      parse(chunk);
      if (!fsyncOn) sock.write(encodeAck(st.last())); // one coalesced ack per read
    });
    sock.on('error', () => undefined);
  });
  srv.listen(0, '127.0.0.1', () => process.send?.({ port: (srv.address() as net.AddressInfo).port }));
  process.on('disconnect', () => {
    clearTimeout(hardStop);
    for (const w of wals) w.close();
    setTimeout(() => process.exit(0), 300);
  });
}

/** The transports of the skeleton, keyed like tickraft's modes. */
export type SkeletonMode = 'inprocess' | 'tcp' | 'tcpFsync';

/** One case: `clients` closed-loop proposers, `warmupMs` of warm-up, then `measureMs` measured. */
export async function runSkeleton(
  mode: SkeletonMode,
  clients: number,
  timing: Timing,
  walDir: string,
): Promise<SkeletonFigures> {
  const { warmupMs, measureMs } = timing;
  const jitWarmupMs = jitWarmupFor(clients, timing);
  const transport = mode === 'inprocess' ? 'inproc' : 'tcp';
  const fsyncOn = mode === 'tcpFsync';
  const term = 1;
  let log: Entry[] = [],
    base = 0;
  const last = (): number => base + log.length;
  let commit = 0;
  const match = [0, 0, 0];
  const waiters: (() => void)[] = [];
  let pending: Entry[] = [];
  let flushScheduled = false;
  let aeSent = 0,
    entriesSent = 0;
  let stop = false;
  const children: { child: ChildProcess; sock: net.Socket }[] = [];
  const local: FollowerState[] = [];
  const send: ((buf: Buffer | null, msg: Append) => void)[] = [];

  const advance = (): void => {
    const a = match[0]!,
      b = match[1]!,
      c = match[2]!;
    const med = Math.max(Math.min(a, b), Math.min(Math.max(a, b), c));
    if (med <= commit) return;
    const n = med - commit;
    commit = med;
    const ws = waiters.splice(0, n);
    for (let i = 0; i < ws.length; i++) ws[i]!();
  };
  const onAck = (i: number, m: number): void => {
    if (m > match[i]!) {
      match[i] = m;
      advance();
    }
  };
  const leaderWal = fsyncOn
    ? new Wal(join(walDir, `leader-${process.pid}.wal`), (l) => {
        match[0] = l;
        advance();
      })
    : null;

  try {
    if (transport === 'tcp') {
      for (let i = 1; i <= 2; i++) {
        const child = track(
          fork(SERVER_JS, ['skeleton-follower', fsyncOn ? '1' : '0', walDir], {
            stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
          }),
        );
        const port = await new Promise<number>((resolve, reject) => {
          child.once('message', (m) => resolve((m as { port: number }).port));
          child.once('exit', () => reject(new Error('bench: a skeleton follower exited before it listened')));
        });
        const sock = await new Promise<net.Socket>((resolve, reject) => {
          const s = net.connect({ port, host: '127.0.0.1' }, () => resolve(s));
          s.on('error', reject);
        });
        sock.setNoDelay(true);
        const idx = i;
        sock.on(
          'data',
          framer((b, s) => {
            if (b[s + 4] === T_ACK) onAck(idx, b.readDoubleLE(s + 5));
          }),
        );
        send[i] = (buf) => {
          sock.write(buf!);
        };
        children.push({ child, sock });
      }
    } else {
      for (let i = 1; i <= 2; i++) {
        const idx = i;
        const st = new FollowerState(fsyncOn ? join(walDir, `f${i}-${process.pid}.wal`) : null, (l) =>
          queueMicrotask(() => onAck(idx, l)),
        );
        send[i] = (buf, msg) =>
          queueMicrotask(() => {
            st.appendEntries(msg, buf);
            if (!fsyncOn) {
              const l = st.last();
              queueMicrotask(() => onAck(idx, l));
            }
          });
        local.push(st);
      }
    }

    const flush = (): void => {
      flushScheduled = false;
      if (pending.length === 0) return;
      const entries = pending;
      pending = [];
      const prev = last();
      for (let i = 0; i < entries.length; i++) log.push(entries[i]!);
      if (log.length > 1 << 20) {
        base += log.length;
        log = [];
      }
      const buf = transport === 'tcp' || fsyncOn ? encodeAE(term, prev, commit, entries) : null;
      const msg: Append = { term, prevIndex: prev, commit, entries };
      send[1]!(buf, msg);
      send[2]!(buf, msg);
      aeSent++;
      entriesSent += entries.length;
      if (leaderWal) leaderWal.append(buf!, last());
      else {
        match[0] = last();
        advance();
      }
    };
    const propose = (payload: Buffer): Promise<void> =>
      new Promise((resolve) => {
        pending.push({ term, index: 0, payload });
        waiters.push(resolve);
        if (!flushScheduled) {
          flushScheduled = true;
          setImmediate(flush);
        }
      });

    const payloads = Array.from({ length: 1024 }, (_, i) => {
      const b = Buffer.alloc(16, 0x61);
      b.writeUInt32LE(i, 0);
      return b;
    });
    const lat = new Float64Array(1 << 21);
    let nl = 0;
    let measuring = false;
    const client = async (id: number, running: () => boolean): Promise<void> => {
      let k = id;
      while (!stop && running()) {
        const t = now();
        await propose(payloads[k++ & 1023]!);
        if (measuring && nl < lat.length) lat[nl++] = now() - t;
      }
    };
    // The JIT warm-up, as tickraft's (workload.ts, Timing): these clients finish before the case's own start.
    if (jitWarmupMs > 0) {
      let warming = true;
      const warm = Array.from({ length: JIT_WARMUP_CLIENTS }, (_, c) => client(c, () => warming));
      await sleep(jitWarmupMs);
      warming = false;
      await Promise.all(warm);
    }
    for (let c = 0; c < clients; c++) void client(c, () => true);
    await sleep(warmupMs);
    measuring = true;
    const c0 = commit,
      ae0 = aeSent,
      en0 = entriesSent,
      t0 = now();
    await sleep(measureMs);
    const c1 = commit,
      ae1 = aeSent,
      en1 = entriesSent,
      t1 = now();
    stop = true;
    measuring = false;
    const seconds = (t1 - t0) / 1000;
    const sorted = lat.subarray(0, nl).sort();
    // The script's percentile: the ceil(p·n)-th smallest sample.
    const pct = (p: number): number =>
      sorted.length === 0
        ? NaN
        : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
    return {
      commitsPerSec: Math.round((c1 - c0) / seconds),
      p50Us: Math.round(pct(50) * 1000),
      p99Us: Math.round(pct(99) * 1000),
      entriesPerAppend: Math.round(((en1 - en0) / Math.max(1, ae1 - ae0)) * 10) / 10,
    };
  } finally {
    stop = true;
    for (const w of waiters.splice(0)) w();
    leaderWal?.close();
    for (const st of local) st.wal?.close();
    await Promise.all(
      children.map(async ({ child, sock }) => {
        sock.destroy();
        const exited = new Promise((r) => child.once('exit', r));
        if (child.connected) child.disconnect();
        await atMost(exited, 2000);
        child.kill('SIGKILL');
      }),
    );
    await sleep(transport === 'tcp' || fsyncOn ? 250 : 20); // the WAL files close 200 ms after their owner
  }
}
