import type { TransitionId } from '../core/types.js';

/**
 * Rejects a proposal whose log entry a new leader removed before it was committed (it was
 * reported `abandoned` / `conflict-with-leader`): it was not applied. Retrying it, with the
 * same id, is safe.
 */
export class ConflictError extends Error {
  /** Always `'ConflictError'`. */
  override readonly name = 'ConflictError';
  /** The id of the transition whose entry was removed. */
  readonly transitionId: TransitionId;
  constructor(transitionId: TransitionId) {
    super(`transition ${JSON.stringify(transitionId)} was removed from the log by a new leader; not applied`);
    this.transitionId = transitionId;
  }
}

/**
 * Rejects a proposal not applied on this replica within its `timeoutMs`. Its entry may still be
 * committed and applied later: retry with the same id, and let the state machine skip an id it
 * has already applied.
 */
export class ProposalTimeoutError extends Error {
  /** Always `'ProposalTimeoutError'`. */
  override readonly name = 'ProposalTimeoutError';
  /** The id of the transition that timed out. */
  readonly transitionId: TransitionId;
  /** The time limit that passed, in ms. */
  readonly timeoutMs: number;
  constructor(transitionId: TransitionId, timeoutMs: number) {
    super(`transition ${JSON.stringify(transitionId)} was not applied within ${timeoutMs} ms; it may still be`);
    this.transitionId = transitionId;
    this.timeoutMs = timeoutMs;
  }
}
