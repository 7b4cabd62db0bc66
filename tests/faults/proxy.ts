// The suite's network: every replica-to-replica TCP connection goes through a small proxy the
// suite owns, so it can cut or delay each direction of each link.
//
// TcpCluster opens one connection per pair, dialed by the lower id; messages flow both ways on
// it. So the proxy for the pair (i, j), i < j, is the address i was told j lives at, and it
// carries both directions: `i → j` (bytes from the dialer) and `j → i` (bytes back).
//
// A cut direction behaves like a black hole (an iptables DROP): its bytes are discarded, the
// connection stays open and the other direction keeps flowing. A TCP stream cannot lose bytes
// in the middle and go on, so on heal every connection that lost bytes is closed: both ends see
// a broken connection and the dialer reconnects, as after a real outage that outlived TCP's
// retransmissions. Delay holds each chunk for the link's delay (plus jitter), in order.
import net from 'node:net';

/** A direction of a link: from replica `from` to replica `to`. */
export interface Direction {
  from: number;
  to: number;
}

/** Delay added to one direction: `ms` plus up to `jitter` ms more, never reordering. */
export interface Delay {
  ms: number;
  jitter: number;
}

/** Random numbers in [0, 1), from the run's seed. */
export type Rng = () => number;

interface Side {
  /** Discarding everything: a cut. */
  cut: boolean;
  delay: Delay;
}

interface Pipe {
  client: net.Socket;
  upstream: net.Socket;
  /** Bytes were dropped: the stream is broken, close it on heal. */
  broken: boolean;
  /** When the last delayed chunk of each direction is released, so delays never reorder. */
  lastRelease: { fwd: number; back: number };
}

/**
 * One listening proxy in front of replica `to`'s Raft port. `from` is the dialer this proxy is
 * given to (0 for a proxy shared by every lower id, see {@link Network.fanIn}).
 */
export class LinkProxy {
  private server: net.Server | undefined;
  private readonly pipes = new Set<Pipe>();
  /** `fwd`: dialer → acceptor; `back`: acceptor → dialer. */
  readonly fwd: Side = { cut: false, delay: { ms: 0, jitter: 0 } };
  readonly back: Side = { cut: false, delay: { ms: 0, jitter: 0 } };
  /** Bytes discarded by cuts, for the report. */
  dropped = 0;

  constructor(
    readonly from: number,
    readonly to: number,
    private readonly target: () => number,
    private readonly rng: Rng,
  ) {}

  /** Listens on `port` (0: any free one); resolves with the port. */
  async listen(port = 0): Promise<number> {
    const server = net.createServer((client) => this.accept(client));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    return (server.address() as net.AddressInfo).port;
  }

  get port(): number {
    return (this.server?.address() as net.AddressInfo | null)?.port ?? 0;
  }

  /** Closes every connection that lost bytes to a cut, so both ends start clean. */
  closeBroken(): void {
    for (const p of this.pipes) if (p.broken) this.closePipe(p);
  }

  /** Closes every connection (the listener stays). */
  closeAll(): void {
    for (const p of this.pipes) this.closePipe(p);
  }

  async close(): Promise<void> {
    this.closeAll();
    const s = this.server;
    this.server = undefined;
    if (s) await new Promise((resolve) => s.close(resolve));
  }

  private accept(client: net.Socket): void {
    client.setNoDelay(true);
    const upstream = net.connect({ host: '127.0.0.1', port: this.target() });
    upstream.setNoDelay(true);
    const pipe: Pipe = { client, upstream, broken: false, lastRelease: { fwd: 0, back: 0 } };
    this.pipes.add(pipe);
    const end = (): void => this.closePipe(pipe);
    for (const s of [client, upstream]) {
      s.on('error', end);
      s.on('close', end);
    }
    client.on('data', (chunk: Buffer) => this.forward(pipe, 'fwd', chunk));
    upstream.on('data', (chunk: Buffer) => this.forward(pipe, 'back', chunk));
  }

  private forward(pipe: Pipe, dir: 'fwd' | 'back', chunk: Buffer): void {
    const side = this[dir];
    const out = dir === 'fwd' ? pipe.upstream : pipe.client;
    if (side.cut) {
      pipe.broken = true;
      this.dropped += chunk.length;
      return;
    }
    const { ms, jitter } = side.delay;
    if (ms === 0 && jitter === 0 && pipe.lastRelease[dir] <= Date.now()) {
      if (!out.destroyed) out.write(chunk);
      return;
    }
    const release = Math.max(pipe.lastRelease[dir], Date.now() + ms + Math.floor(this.rng() * (jitter + 1)));
    pipe.lastRelease[dir] = release;
    setTimeout(() => {
      // A cut that began while the chunk was on its way drops it too.
      if (side.cut) {
        pipe.broken = true;
        this.dropped += chunk.length;
        return;
      }
      if (!out.destroyed) out.write(chunk);
    }, release - Date.now());
  }

  private closePipe(pipe: Pipe): void {
    if (!this.pipes.delete(pipe)) return;
    pipe.client.destroy();
    pipe.upstream.destroy();
  }
}

/**
 * Every link of the cluster: a {@link LinkProxy} per pair of members, plus a shared "fan-in"
 * proxy for a member re-added at run time (its address is committed through the log once for
 * all members, so the pairs into it cannot be told apart: cutting any link into it cuts them all).
 */
export class Network {
  private readonly pairs = new Map<string, LinkProxy>();
  private readonly fanIns = new Map<number, LinkProxy>();
  /** Directions cut now, as `from>to`. */
  private readonly cuts = new Set<string>();
  private readonly delays = new Map<string, Delay>();

  constructor(
    private readonly realPort: (id: number) => number,
    private readonly rng: Rng,
  ) {}

  /** Creates the proxies of every pair among `ids`; `ports(n)` picks the ports they listen on. */
  async start(ids: number[], ports: (n: number) => Promise<number[]>): Promise<void> {
    this.ports = ports;
    const pairs = ids.flatMap((i) => ids.filter((j) => i < j).map((j) => [i, j] as const));
    const free = await ports(pairs.length);
    for (const [k, [i, j]] of pairs.entries()) {
      const p = new LinkProxy(i, j, () => this.realPort(j), this.rng);
      await p.listen(free[k]!);
      this.pairs.set(`${i}-${j}`, p);
    }
  }

  private ports: (n: number) => Promise<number[]> = async (n) => new Array<number>(n).fill(0);

  /** The address (port) replica `from` is told replica `to` lives at. */
  portFor(from: number, to: number): number {
    const [i, j] = from < to ? [from, to] : [to, from];
    const p = this.pairs.get(`${i}-${j}`);
    if (!p) throw new Error(`no proxy for ${i}-${j}`);
    return p.port;
  }

  /** The shared proxy into `to`, for its re-addition through the log (created on first use). */
  async fanIn(to: number): Promise<number> {
    let p = this.fanIns.get(to);
    if (!p) {
      p = new LinkProxy(0, to, () => this.realPort(to), this.rng);
      await p.listen((await this.ports(1))[0]);
      this.fanIns.set(to, p);
      this.apply();
    }
    return p.port;
  }

  /** Cuts (or restores) one direction. */
  setCut(from: number, to: number, cut: boolean): void {
    if (cut) this.cuts.add(`${from}>${to}`);
    else this.cuts.delete(`${from}>${to}`);
    this.apply();
  }

  /** Cuts every link between the groups, both ways; links inside a group stay up. */
  partition(groups: number[][]): void {
    for (const a of groups) {
      for (const b of groups) if (a !== b) for (const x of a) for (const y of b) this.cuts.add(`${x}>${y}`);
    }
    this.apply();
  }

  /** Adds delay to one direction (0 ms and 0 jitter removes it). */
  setDelay(from: number, to: number, d: Delay): void {
    if (d.ms === 0 && d.jitter === 0) this.delays.delete(`${from}>${to}`);
    else this.delays.set(`${from}>${to}`, d);
    this.apply();
  }

  /** Whether any direction is cut or delayed now. */
  get faulty(): boolean {
    return this.cuts.size > 0 || this.delays.size > 0;
  }

  /** A description of the faults in force, e.g. `cut 1>2 2>1, delay 3>4 50ms`. */
  describe(): string {
    const cuts = [...this.cuts].sort().join(' ');
    const delays = [...this.delays].map(([k, d]) => `${k} ${d.ms}+${d.jitter}ms`).join(' ');
    return [cuts && `cut ${cuts}`, delays && `delay ${delays}`].filter(Boolean).join(', ') || 'none';
  }

  /** Restores every link and closes the connections that lost bytes. */
  heal(): void {
    this.cuts.clear();
    this.delays.clear();
    this.apply();
    for (const p of this.all()) p.closeBroken();
  }

  /** Bytes dropped by cuts, over every proxy. */
  get dropped(): number {
    return this.all().reduce((s, p) => s + p.dropped, 0);
  }

  async close(): Promise<void> {
    await Promise.all(this.all().map((p) => p.close()));
  }

  private all(): LinkProxy[] {
    return [...this.pairs.values(), ...this.fanIns.values()];
  }

  /** Pushes the cut and delay sets into the proxies. */
  private apply(): void {
    const none: Delay = { ms: 0, jitter: 0 };
    for (const p of this.pairs.values()) {
      p.fwd.cut = this.cuts.has(`${p.from}>${p.to}`);
      p.back.cut = this.cuts.has(`${p.to}>${p.from}`);
      p.fwd.delay = this.delays.get(`${p.from}>${p.to}`) ?? none;
      p.back.delay = this.delays.get(`${p.to}>${p.from}`) ?? none;
    }
    // A fan-in proxy carries the connections of every lower id into its member.
    const parse = (k: string): [number, number] => k.split('>').map(Number) as [number, number];
    for (const p of this.fanIns.values()) {
      const into = (k: string): boolean => {
        const [a, b] = parse(k);
        return b === p.to && a < p.to;
      };
      const outOf = (k: string): boolean => {
        const [a, b] = parse(k);
        return a === p.to && b < p.to;
      };
      p.fwd.cut = [...this.cuts].some(into);
      p.back.cut = [...this.cuts].some(outOf);
      p.fwd.delay = [...this.delays].find(([k]) => into(k))?.[1] ?? none;
      p.back.delay = [...this.delays].find(([k]) => outOf(k))?.[1] ?? none;
    }
  }
}
