/**
 * tickraft/multi: many Raft groups in one process. A {@link RaftHost} runs one member of each of
 * its groups (an ordinary {@link Replica}, the same driver over the same algorithm), ticks only
 * the groups that have work, sends every group's messages to a peer process in one
 * {@link Envelope} per tick, and quiesces idle groups. See docs/multiraft.md.
 * @packageDocumentation
 * @module tickraft/multi
 */
export { RaftHost, type RaftHostOptions, type RaftHostStats, type GroupOptions } from './multi/host.js';
export { isValidEnvelope, type Envelope, type GroupId, type HostNetwork } from './multi/envelope.js';
export { localHostNetwork } from './multi/local.js';
