// What tickraft-kv runs behind its HTTP API: one Replica (single.ts), or with --groups a
// RaftHost of many groups (sharded.ts). server.ts owns the process (flags, HTTP, startup and
// the SIGTERM drain) and drives either through {@link KvEngine}. Here too, what both share:
// proposing through a ProposalQueue and telling the replica's refusals apart for the HTTP layer.
import { performance } from 'node:perf_hooks';

import {
  CatchUpTimeoutError,
  ConflictError,
  InvalidArgumentError,
  MembershipChangeInProgressError,
  NotLeaderError,
  ProposalTimeoutError,
  ReplicaStoppedError,
  TransferInProgressError,
  TransferTimeoutError,
  type ProposalQueue,
} from 'tickraft';
import type { TcpEvent } from 'tickraft/tcp';
import type { ServerFlags } from './flags.js';
import type { KvBackend } from './http.js';
import type { Logger } from './log.js';
import type { ProposalOutcome } from './metrics.js';
import {
  KvConflict,
  KvInvalid,
  KvNotLeader,
  KvStopping,
  KvTimeout,
  type KvCommand,
  type KvResult,
  type KvSnapshot,
} from './state-machine.js';

/** What an engine is given by the process. */
export interface EngineContext {
  readonly flags: ServerFlags;
  readonly logger: Logger;
  /** One info line. */
  log(what: string): void;
  /** One error line. */
  fail(what: string): void;
  /** Drains and exits (server.ts): for a fault the engine cannot live with. */
  shutdown(code: number, why: string): Promise<void>;
}

/** The Raft side of a tickraft-kv process. */
export interface KvEngine {
  /** The request handlers of {@link KvBackend}; the server adds its id, timeout and isStopping. */
  readonly backend: Omit<KvBackend, 'id' | 'timeout' | 'isStopping'>;
  /** Opens the data directory and loads it, before any port is taken; rejects if it cannot be used. */
  open(): Promise<void>;
  /** Takes the Raft port; resolves with it. */
  listen(): Promise<number>;
  /** Runs the tick loop; settles when it ends (after {@link stop}, or on a failure). */
  run(): Promise<void>;
  /**
   * Stops the replicas (the tick in progress finishes, their storage closes) and rejects the
   * writes still waiting with {@link KvStopping}.
   */
  stop(): Promise<void>;
  /** Closes the network and whatever else is left open, once the loop has ended. */
  close(): Promise<void>;
}

/**
 * The `submit` of a {@link KvBackend} over one ProposalQueue: proposes and waits until the command
 * is applied here (at most `timeoutMs`), its refusals mapped by {@link refusal}. `outcome` counts
 * and times each proposal (the metrics). One promise chain per write: this runs for every request.
 */
export function submitter(
  proposals: ProposalQueue<KvCommand, KvSnapshot, KvResult>,
  timeoutMs: number,
  outcome?: (what: ProposalOutcome, seconds?: number) => void,
): (command: KvCommand) => Promise<KvResult> {
  const options = { timeoutMs };
  return (command) => {
    const start = performance.now();
    return proposals.propose(command, options).then(
      (result) => {
        outcome?.(result.ok ? 'applied' : 'refused', (performance.now() - start) / 1000);
        return result;
      },
      (error: unknown) => {
        outcome?.(outcomeOf(error));
        throw refusal(error);
      },
    );
  };
}

function outcomeOf(error: unknown): ProposalOutcome {
  if (error instanceof NotLeaderError) return 'not_leader';
  if (error instanceof ConflictError) return 'conflict';
  if (error instanceof ProposalTimeoutError) return 'timeout';
  if (error instanceof KvStopping || error instanceof ReplicaStoppedError) return 'stopped';
  return 'error';
}

/** Maps the replica's refusals, told apart by class, to what the HTTP layer understands. */
export function refusal(error: unknown): unknown {
  if (error instanceof NotLeaderError) return new KvNotLeader(error.message, error.leaderId);
  // A conflict settles the latest attempt under the id, which need not be the entry removed: unknown.
  if (error instanceof ConflictError) return new KvNotLeader(error.message, undefined, false);
  if (error instanceof ProposalTimeoutError) return new KvTimeout(error.message);
  if (error instanceof InvalidArgumentError) return new KvInvalid(error.message);
  if (error instanceof ReplicaStoppedError || error instanceof KvStopping) {
    return new KvStopping('the server is shutting down');
  }
  const busy = error instanceof MembershipChangeInProgressError || error instanceof TransferInProgressError;
  if (busy) return new KvConflict(error.message);
  const late = error instanceof CatchUpTimeoutError || error instanceof TransferTimeoutError;
  if (late) return new KvTimeout(error.message);
  return error;
}

/** Waits for a leader-only operation of a replica, its refusals mapped by {@link refusal}. */
export function leaderOp<R>(p: Promise<R>): Promise<R> {
  return p.catch((error: unknown) => {
    throw refusal(error);
  });
}

/**
 * The `onEvent` of the TcpCluster: logs connections and refusals, and ends the process if
 * another live process holds this id (two replicas with one identity must not run on).
 */
export function tcpEvents(ctx: EngineContext, dropped?: (peer: number | undefined) => void): (e: TcpEvent) => void {
  const { log, fail } = ctx;
  const id = ctx.flags.id;
  return (e) => {
    if (e.type === 'dropped') dropped?.(e.peer);
    else if (e.type === 'connected' || e.type === 'disconnected') log(`raft peer ${e.peer} ${e.type}`);
    else if (e.type === 'authFailure') fail(`raft connection from ${e.remote} refused: ${e.reason}`);
    else if (e.type === 'identityConflict' && e.outbound === true) {
      // Another live process holds this id: running on would make two replicas with one identity.
      fail(`another process is running as replica ${id} (${e.reason}); exiting`);
      void ctx.shutdown(1, 'replica id in use by another process');
    } else if (e.type === 'identityConflict') {
      fail(`refused a second process claiming replica ${e.peer} from ${e.remote}: ${e.reason}`);
    }
  };
}
