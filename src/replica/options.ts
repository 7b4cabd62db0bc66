import type { Cluster } from '../core/cluster.js';
import type { RaftConfig } from '../core/config.js';
import { InvalidOptionsError } from './errors.js';
import type { StateMachine } from './state-machine.js';
import type { Storage } from '../core/storage.js';
import type { ReplicaId, StateMachineTransition } from '../core/types.js';
import { isTransition } from '../core/validate.js';
import { SILENT_LOGGER, isLogger, safeLogger, type Logger } from '../observe/logger.js';

/** How a {@link Replica} is built. Invalid options make the constructor throw {@link InvalidOptionsError}. */
export interface ReplicaOptions<T extends StateMachineTransition, D = unknown> {
  /** This replica's id: an integer, unique in the cluster. */
  id: ReplicaId;
  /**
   * The other members, not including `id`; empty for a single-replica cluster. After
   * membership changes, pass the current members: a replica accepts messages only from these
   * ids and from members of the configurations in its log and snapshot.
   */
  peerIds: ReplicaId[];
  /** The network. */
  cluster: Cluster<T, D>;
  /** The replicated state. */
  stateMachine: StateMachine<T, D>;
  /** The transition a new leader appends first in its term; applying it must have no effect. */
  noopTransition: T;
  /** Milliseconds between a leader's heartbeats. Must be below `electionTimeoutRange[0]`. */
  heartbeatTimeout: number;
  /**
   * Milliseconds a follower waits without hearing from a leader before it campaigns, drawn
   * uniformly from this range for every election. A few heartbeats wide at the least, and
   * wider than the network's round trip.
   */
  electionTimeoutRange: [number, number];
  /**
   * Milliseconds a new member has to catch up with the leader's log (as a non-voter) before
   * {@link Replica.addMember} gives up and rejects with {@link CatchUpTimeoutError}. Raise it for
   * a large state or a slow link.
   * @defaultValue 10 × `electionTimeoutRange[1]`
   */
  catchUpTimeout?: number;
  /**
   * Compact the log into a snapshot after this many applied entries; 0 never compacts and
   * needs no snapshot hooks.
   * @defaultValue 0
   */
  snapshotDelta?: number;
  /**
   * Durable term, vote, log and snapshot. Pass the same instance to a restarted replica.
   * @defaultValue `new MemoryStorage()`
   */
  storage?: Storage<T, D>;
  /**
   * Milliseconds the {@link Replica.start} loop sleeps after a tick that found nothing to do
   * (never longer than the next timer). A busy replica ticks back to back.
   * @defaultValue 5
   */
  tickInterval?: number;
  /**
   * The replica's only clock, in milliseconds. Pass a virtual clock to simulate.
   * @defaultValue `Date.now`
   */
  clock?: () => number;
  /**
   * The replica's only randomness, in [0, 1). Pass a seeded generator to replay a run exactly.
   * A value outside [0, 1) (NaN included) stops the replica for good: the tick that drew it,
   * and every later one, rejects with {@link InvalidOptionsError}.
   * @defaultValue `Math.random`
   */
  random?: () => number;
  /**
   * Where the replica writes its log lines (elections, leader and membership changes,
   * snapshots, catch-up progress, dropped messages, failures): any object with pino's methods
   * `debug`, `info`, `warn` and `error(fields, message)`, such as a pino logger.
   * @defaultValue a logger that writes nothing
   */
  logger?: Logger;
  /**
   * Most entries one AppendEntries message carries.
   * @defaultValue 512
   */
  maxEntriesPerMessage?: number;
  /**
   * Most AppendEntries messages in flight (sent, not yet acknowledged) to one follower.
   * @defaultValue 32
   */
  maxInflightMessages?: number;
  /**
   * Most bytes one message carries, estimated without encoding (a string counts its length;
   * see the guide): an AppendEntries carries at least one entry, then as many as fit; a
   * snapshot travels in chunks of this many characters of its JSON text; a leader appends
   * about this many bytes of polled transitions per tick (the rest wait for the next ticks).
   * Keep the transport's frame limit well above it (non-ASCII text may encode to 3× its length).
   * @defaultValue 1 MiB (1048576)
   */
  maxBytesPerMessage?: number;
  /**
   * Most estimated bytes in flight (sent, not yet acknowledged) to one follower, in entries or
   * snapshot chunks, beyond which the leader waits for acknowledgements. It also bounds what a
   * follower receives, and so saves, in one tick.
   * @defaultValue 8 MiB (8388608)
   */
  maxInflightBytes?: number;
  /**
   * Ask first whether an election could be won, without raising the term. A replica that heard
   * from a leader within the minimum election timeout refuses, so a replica returning from a
   * partition cannot depose a healthy leader.
   * @defaultValue true
   */
  preVote?: boolean;
  /**
   * A leader that has heard from no majority for one maximum election timeout steps down, and
   * a replica that hears from its leader ignores vote requests that would depose it.
   * @defaultValue true
   */
  checkQuorum?: boolean;
  /**
   * This replica is being added to a running cluster: `peerIds` are the current members, and it
   * never campaigns until a configuration that includes it is in its log.
   * @defaultValue false
   */
  join?: boolean;
  /**
   * Dissertation §10.2.1: a leader sends new entries to its followers while it saves them
   * itself, rather than after; it still counts itself toward commitment only once its save is
   * durable, and still reports `queued` only then, so Raft's safety is unchanged and one disk
   * write leaves the commit path. The cost: if that save fails (the replica then stops), the
   * followers may already hold, and may commit, entries the leader never reported `queued`;
   * by default nothing that depends on a batch is sent before it is durable.
   * @defaultValue false
   */
  leaderSendsBeforeSave?: boolean;
}

/** Options with every default filled in, as the driver reads them. */
export type Config<T extends StateMachineTransition, D> = Required<Omit<ReplicaOptions<T, D>, 'storage'>> & {
  storage: Storage<T, D> | undefined;
};

const fail = (what: string): never => {
  throw new InvalidOptionsError(`invalid replica options: ${what}`);
};
const isId = (v: unknown): boolean => Number.isSafeInteger(v);
const positive = (v: unknown): boolean => typeof v === 'number' && Number.isFinite(v) && v > 0;
const hasMethods = (o: unknown, names: string[]): boolean =>
  typeof o === 'object' && o !== null && names.every((n) => typeof (o as Record<string, unknown>)[n] === 'function');
const CLUSTER = ['sendMessage', 'receiveMessages', 'halt', 'registerLeader'];
const STATE_MACHINE = ['registerTransitionState', 'applyTransition', 'getPendingTransitions'];

/** Checks every option and fills in defaults; throws {@link InvalidOptionsError} naming the first problem. */
export function validateOptions<T extends StateMachineTransition, D>(o: ReplicaOptions<T, D>): Config<T, D> {
  if (typeof o !== 'object' || o === null) fail('options must be an object');
  if (!isId(o.id)) fail(`id must be an integer, got ${String(o.id)}`);
  if (!Array.isArray(o.peerIds) || !o.peerIds.every(isId)) fail('peerIds must be an array of integer ids');
  if (o.peerIds.includes(o.id)) fail(`peerIds must not include the replica's own id ${o.id}`);
  if (new Set(o.peerIds).size !== o.peerIds.length) fail('peerIds must not repeat an id');
  if (!hasMethods(o.cluster, CLUSTER)) fail(`cluster must implement ${CLUSTER.join(', ')}`);
  if (!hasMethods(o.stateMachine, STATE_MACHINE)) fail(`stateMachine must implement ${STATE_MACHINE.join(', ')}`);
  if (!isTransition(o.noopTransition)) fail('noopTransition must be an object with a string or number id');
  const heartbeat = o.heartbeatTimeout;
  if (!positive(heartbeat)) fail(`heartbeatTimeout must be a positive number of ms, got ${String(heartbeat)}`);
  const range = o.electionTimeoutRange;
  if (!Array.isArray(range) || range.length !== 2 || !positive(range[0]) || !positive(range[1])) {
    fail('electionTimeoutRange must be two positive numbers of ms');
  }
  if (range[0] > range[1]) fail(`electionTimeoutRange is inverted: [${range[0]}, ${range[1]}]`);
  const below = `electionTimeoutRange[0] (${range[0]}) must be above heartbeatTimeout (${heartbeat})`;
  if (range[0] <= heartbeat) fail(below);
  const catchUpTimeout = o.catchUpTimeout ?? 10 * range[1];
  if (!positive(catchUpTimeout)) fail(`catchUpTimeout must be a positive number of ms, got ${String(catchUpTimeout)}`);
  const snapshotDelta = o.snapshotDelta ?? 0;
  if (!Number.isSafeInteger(snapshotDelta) || snapshotDelta < 0) {
    fail(`snapshotDelta must be a non-negative integer, got ${String(o.snapshotDelta)}`);
  }
  if (snapshotDelta > 0 && !hasMethods(o.stateMachine, ['createSnapshot', 'setSnapshot'])) {
    fail('snapshotDelta > 0 needs stateMachine.createSnapshot and stateMachine.setSnapshot');
  }
  if (o.storage !== undefined && !hasMethods(o.storage, ['load', 'save'])) fail('storage must implement load and save');
  if (o.logger !== undefined && !isLogger(o.logger)) fail('logger must have the methods debug, info, warn and error');
  const tickInterval = o.tickInterval ?? 5;
  if (typeof tickInterval !== 'number' || !(tickInterval >= 0) || !Number.isFinite(tickInterval)) {
    fail('tickInterval must be a non-negative number of ms');
  }
  for (const f of ['clock', 'random'] as const) {
    if (o[f] !== undefined && typeof o[f] !== 'function') fail(`${f} must be a function`);
  }
  const counts = {
    maxEntriesPerMessage: o.maxEntriesPerMessage ?? 512, maxInflightMessages: o.maxInflightMessages ?? 32,
    maxBytesPerMessage: o.maxBytesPerMessage ?? 1 << 20, maxInflightBytes: o.maxInflightBytes ?? 8 << 20,
  };
  for (const [f, v] of Object.entries(counts)) if (!isId(v) || v < 1) fail(`${f} must be a positive integer`);
  for (const f of ['preVote', 'checkQuorum', 'join', 'leaderSendsBeforeSave'] as const) {
    if (o[f] !== undefined && typeof o[f] !== 'boolean') fail(`${f} must be a boolean`);
  }
  return {
    ...o, catchUpTimeout, snapshotDelta, tickInterval, ...counts, storage: o.storage,
    preVote: o.preVote ?? true, checkQuorum: o.checkQuorum ?? true, join: o.join ?? false,
    leaderSendsBeforeSave: o.leaderSendsBeforeSave ?? false,
    // The defaults are the only place the library touches a real clock or real randomness.
    clock: o.clock ?? Date.now, random: o.random ?? Math.random, logger: safeLogger(o.logger ?? SILENT_LOGGER),
  };
}

/** The settings the algorithm uses, and nothing else: not the cluster, the state machine, the storage, the clock. */
export function raftConfig<T extends StateMachineTransition, D>(c: Config<T, D>): RaftConfig<T> {
  const { id, peerIds, noopTransition, heartbeatTimeout, electionTimeoutRange, catchUpTimeout, snapshotDelta } = c;
  const { maxEntriesPerMessage, maxInflightMessages, maxBytesPerMessage, maxInflightBytes } = c;
  return {
    id, peerIds, noopTransition, heartbeatTimeout, electionTimeoutRange, catchUpTimeout, snapshotDelta,
    maxEntriesPerMessage, maxInflightMessages, maxBytesPerMessage, maxInflightBytes,
    preVote: c.preVote, checkQuorum: c.checkQuorum, join: c.join, random: c.random,
  };
}
