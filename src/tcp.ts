/**
 * tickraft/tcp: the TCP transport, `TcpCluster` (authenticated peers, optional mutual TLS,
 * validated frames, reconnection, bounded queues), and the message codecs it speaks.
 *
 * A subpath of its own so that the package root loads neither `node:net`, `node:tls` nor msgpackr.
 * @packageDocumentation
 * @module tickraft/tcp
 */
export { TcpCluster } from './transport/tcp.js';
export type { TcpClusterOptions, PeerAddress, TcpTlsOptions } from './transport/tcp-options.js';
export type { TcpStats, TcpEvent, DropReason } from './transport/tcp-events.js';
export { jsonCodec, msgpackCodec, type MessageCodec } from './transport/codec.js';
export type { Codec } from './core/codec.js';
// Multi-raft over TCP: the RaftHost itself is tickraft/multi, which loads no network module.
export { TcpHostNetwork, envelopeCodec } from './multi/tcp.js';
