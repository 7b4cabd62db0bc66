// The options of TcpCluster, and their validation: every invalid option throws a TypeError
// naming it, before anything is opened.
import type { Codec } from '../core/codec.js';
import type { ReplicaId } from '../core/types.js';
import { msgpackCodec } from './codec.js';
import { isValidCodecName } from './handshake.js';
// TcpStats: for the doc comments' links.
import type { TcpEvent, TcpStats } from './tcp-events.js';

/** Where a replica accepts TCP connections. */
export interface PeerAddress {
  /** Host name or IP address. */
  readonly host: string;
  /** TCP port; 0 when listening picks a free one. */
  readonly port: number;
}

/** Mutual TLS: each side presents `cert` and accepts only peers whose certificate `ca` signed. */
export interface TcpTlsOptions {
  /** This replica's private key (PEM). */
  readonly key: string | Buffer;
  /** This replica's certificate (PEM), signed by `ca`. */
  readonly cert: string | Buffer;
  /** The certificate authority (or authorities) trusted to sign peers' certificates (PEM). */
  readonly ca: string | Buffer | ReadonlyArray<string | Buffer>;
}

/** How a {@link TcpCluster} is built. Invalid options throw a TypeError naming the problem. */
export interface TcpClusterOptions {
  /** This replica's id. */
  readonly id: ReplicaId;
  /** Where to accept connections. Port 0 picks a free port: read it from {@link TcpCluster.port}. */
  readonly listen: PeerAddress;
  /** The other replicas and where they listen. More can be added with {@link TcpCluster.addPeer}. */
  readonly peers?: Readonly<Record<number, PeerAddress>>;
  /** The cluster secret every replica proves it knows (HMAC-SHA256); at least 16 bytes. */
  readonly secret: string | Buffer;
  /** Mutual TLS; without it every frame is still authenticated (a MAC per frame), but not encrypted. */
  readonly tls?: TcpTlsOptions;
  /**
   * The wire format; every replica must use the same (checked at the handshake).
   * @defaultValue {@link msgpackCodec}
   */
  readonly codec?: Codec;
  /**
   * The largest message, in encoded bytes. A larger incoming frame closes its connection; a larger
   * outgoing message is dropped.
   * @defaultValue 64 MiB
   */
  readonly maxFrameBytes?: number;
  /**
   * Messages queued per peer while it is disconnected or slow; beyond that the oldest are dropped.
   * @defaultValue 10000
   */
  readonly maxQueuedMessages?: number;
  /**
   * Encoded bytes queued per peer while it is disconnected or slow (besides what the socket
   * holds); beyond that the oldest messages are dropped, though the newest is always kept.
   * @defaultValue 64 MiB
   */
  readonly maxQueuedBytes?: number;
  /**
   * Received messages held until {@link TcpCluster.receiveMessages}; beyond that the oldest are dropped.
   * @defaultValue 100000
   */
  readonly maxInboxMessages?: number;
  /**
   * Reconnection delays in ms: the n-th consecutive failure waits about `min(maxDelay, minDelay·2ⁿ)`,
   * jittered down by up to half.
   * @defaultValue `{ minDelay: 100, maxDelay: 5000 }`
   */
  readonly reconnect?: {
    /** First delay, in ms. */
    readonly minDelay?: number;
    /** Longest delay, in ms. */
    readonly maxDelay?: number;
  };
  /**
   * Ms a connection has to connect and authenticate before it is closed. Under a flood of
   * inbound connections, one still authenticating after `min(handshakeTimeout, 500)` ms may be
   * closed sooner to make room (see {@link TcpStats.authFailures}). A dialer claiming the id of a
   * connected peer waits up to half of it while that peer's connection is checked for life.
   * @defaultValue 5000
   */
  readonly handshakeTimeout?: number;
  /** Told of connections, failures and drops, for logging and metrics. Must not throw (it is ignored if it does). */
  readonly onEvent?: (event: TcpEvent) => void;
  /**
   * Ms a peer that has left the membership must stay quiet (nothing sent to it, nothing received
   * from it) before its connection is closed and it is no longer redialed; see
   * {@link TcpCluster.registerMembership}.
   * @defaultValue 10000
   */
  readonly retireAfter?: number;
  /**
   * What a received message must satisfy, instead of being a valid message from the authenticated
   * peer: the multi-raft host's transport carries envelopes (`TcpHostNetwork`, `tickraft/tcp`).
   * @internal
   */
  readonly accept?: (message: unknown, from: ReplicaId) => boolean;
}

const MiB = 1024 * 1024;

/** {@link TcpClusterOptions} checked, with the defaults filled in. */
export interface ResolvedTcpOptions {
  readonly id: ReplicaId;
  readonly listen: PeerAddress;
  readonly secret: Buffer;
  readonly tls: TcpTlsOptions | undefined;
  readonly codec: Codec;
  /** The codec's name, compared at the handshake. */
  readonly codecName: string;
  readonly maxFrameBytes: number;
  readonly maxQueuedMessages: number;
  readonly maxQueuedBytes: number;
  readonly maxInboxMessages: number;
  readonly minDelay: number;
  readonly maxDelay: number;
  readonly handshakeTimeout: number;
  readonly retireAfter: number;
  readonly onEvent: ((event: TcpEvent) => void) | undefined;
  readonly accept: ((message: unknown, from: ReplicaId) => boolean) | undefined;
  /** The `peers` option's entries, ids checked; each address is checked as the peer is added. */
  readonly peers: ReadonlyArray<readonly [ReplicaId, PeerAddress]>;
}

/** Checks `options` (in the order they are listed) and fills in the defaults. */
export function resolveOptions(options: TcpClusterOptions): ResolvedTcpOptions {
  if (typeof options !== 'object' || options === null) throw new TypeError('TcpCluster: options must be an object');
  const o = options;
  if (!Number.isSafeInteger(o.id))
    throw new TypeError(`TcpCluster: options.id must be an integer, got ${String(o.id)}`);
  const listen = checkAddress(o.listen, 'options.listen', true);
  const secret = typeof o.secret === 'string' ? Buffer.from(o.secret, 'utf8') : o.secret;
  if (!Buffer.isBuffer(secret) || secret.length < 16) {
    throw new TypeError('TcpCluster: options.secret must be a string or Buffer of at least 16 bytes');
  }
  if (o.tls !== undefined) {
    const t = o.tls;
    const pem = (v: unknown): boolean => (typeof v === 'string' || Buffer.isBuffer(v)) && v.length > 0;
    const caOk = pem(t?.ca) || (Array.isArray(t?.ca) && t.ca.length > 0 && t.ca.every(pem));
    if (typeof t !== 'object' || t === null || !pem(t.key) || !pem(t.cert) || !caOk) {
      throw new TypeError('TcpCluster: options.tls needs key, cert and ca (PEM strings or Buffers)');
    }
  }
  const codec = o.codec ?? msgpackCodec;
  const codecOk = typeof codec === 'object' && codec !== null;
  if (!codecOk || typeof codec.encode !== 'function' || typeof codec.decode !== 'function') {
    throw new TypeError('TcpCluster: options.codec must have encode and decode functions');
  }
  const codecName = codec.name ?? 'custom';
  if (!isValidCodecName(codecName)) {
    throw new TypeError('TcpCluster: options.codec.name must be 1 to 64 printable ASCII characters');
  }
  const maxFrameBytes = checkInt(o.maxFrameBytes, 64 * MiB, 'options.maxFrameBytes', 64, 0xffff_ffff);
  const maxQueuedMessages = checkInt(o.maxQueuedMessages, 10_000, 'options.maxQueuedMessages', 1);
  const maxQueuedBytes = checkInt(o.maxQueuedBytes, 64 * MiB, 'options.maxQueuedBytes', 1);
  const maxInboxMessages = checkInt(o.maxInboxMessages, 100_000, 'options.maxInboxMessages', 1);
  if (o.reconnect !== undefined && (typeof o.reconnect !== 'object' || o.reconnect === null)) {
    throw new TypeError('TcpCluster: options.reconnect must be an object');
  }
  const minDelay = checkInt(o.reconnect?.minDelay, 100, 'options.reconnect.minDelay', 1);
  const maxDelay = checkInt(o.reconnect?.maxDelay, Math.max(5000, minDelay), 'options.reconnect.maxDelay', minDelay);
  const handshakeTimeout = checkInt(o.handshakeTimeout, 5000, 'options.handshakeTimeout', 1);
  const retireAfter = checkInt(o.retireAfter, 10_000, 'options.retireAfter', 1);
  if (o.onEvent !== undefined && typeof o.onEvent !== 'function') {
    throw new TypeError('TcpCluster: options.onEvent must be a function');
  }
  if (o.accept !== undefined && typeof o.accept !== 'function') {
    throw new TypeError('TcpCluster: options.accept must be a function');
  }
  const peers: Array<readonly [ReplicaId, PeerAddress]> = [];
  if (o.peers !== undefined) {
    if (typeof o.peers !== 'object' || o.peers === null) {
      throw new TypeError('TcpCluster: options.peers must be an object mapping ids to addresses');
    }
    for (const [key, address] of Object.entries(o.peers)) {
      const id = Number(key);
      if (!Number.isSafeInteger(id) || String(id) !== key) {
        throw new TypeError(`TcpCluster: options.peers key ${JSON.stringify(key)} is not an integer id`);
      }
      peers.push([id, checkPeer(o.id, id, address)]);
    }
  }
  return {
    id: o.id,
    listen,
    secret: Buffer.from(secret),
    tls: o.tls,
    codec,
    codecName,
    maxFrameBytes,
    maxQueuedMessages,
    maxQueuedBytes,
    maxInboxMessages,
    minDelay,
    maxDelay,
    handshakeTimeout,
    retireAfter,
    onEvent: o.onEvent,
    accept: o.accept,
    peers,
  };
}

/** A peer's id and address, checked as {@link TcpCluster.addPeer} takes them. */
export function checkPeer(ownId: ReplicaId, id: ReplicaId, address: unknown): PeerAddress {
  if (!Number.isSafeInteger(id)) throw new TypeError(`TcpCluster: peer id must be an integer, got ${String(id)}`);
  if (id === ownId) throw new TypeError(`TcpCluster: peer id ${id} is this replica's own id`);
  return checkAddress(address, `address of peer ${id}`, false);
}

/** An optional integer option, checked against its range. */
export function checkInt(
  value: number | undefined,
  fallback: number,
  name: string,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < min || value > max)
    throw new TypeError(`TcpCluster: ${name} must be an integer from ${min} to ${max}, got ${String(value)}`);
  return value;
}

/** A `{ host, port }` address, checked; `name` says which option it is in errors. */
export function checkAddress(address: unknown, name: string, portZeroOk: boolean): PeerAddress {
  if (typeof address !== 'object' || address === null)
    throw new TypeError(`TcpCluster: ${name} must be { host, port }`);
  const { host, port } = address as { host?: unknown; port?: unknown };
  if (typeof host !== 'string' || host.length === 0)
    throw new TypeError(`TcpCluster: ${name}.host must be a non-empty string`);
  if (!Number.isInteger(port) || (port as number) < (portZeroOk ? 0 : 1) || (port as number) > 65535) {
    throw new TypeError(
      `TcpCluster: ${name}.port must be an integer from ${portZeroOk ? 0 : 1} to 65535, got ${String(port)}`,
    );
  }
  return { host, port: port as number };
}
