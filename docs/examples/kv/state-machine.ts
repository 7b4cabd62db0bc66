import * as crypto from 'node:crypto';

import type { ProposalStateMachine, Snapshot } from 'tickraft';

/** Where a member listens: host and port. */
export interface KvAddress {
  host: string;
  port: number;
}

/** A member's Raft (TCP) and HTTP addresses, replicated through the log so every replica knows them. */
export interface MemberAddresses {
  raft: KvAddress;
  http: KvAddress;
}

/**
 * A key-value command. `client` and `seq` make retries safe: a command is applied once per
 * (client, seq). `member-address` records where a member listens, on every replica (the leader
 * commits it before adding the member, so whoever leads next can reach it).
 */
export type KvCommand =
  | { id: string; client: string; seq: number; op: 'put'; key: string; value: string }
  | { id: string; client: string; seq: number; op: 'delete'; key: string }
  | { id: string; client: string; seq: number; op: 'get'; key: string }
  | { id: string; op: 'member-address'; member: number; raft: KvAddress; http: KvAddress }
  | { id: 'noop'; op: 'noop' };

/**
 * What a command returns. `ok`: applied now or before (a retry gets the first application's
 * answer): `previous` is the value read (get) or replaced (put, delete). Refused: the command
 * reuses a (client, seq) pair already applied with a different body, or an older seq; nothing
 * changed.
 */
export type KvResult = { ok: true; previous: string | undefined } | { ok: false; refused: string };

/** A client's last applied command: its seq, its answer, and a digest of it to tell a retry from a reuse. */
export interface KvSession {
  seq: number;
  result: string | undefined;
  digest?: string;
}

/** The replicated state of a snapshot: the map and each client's last applied command. */
export interface KvSnapshot {
  entries: [string, string][];
  sessions: [string, KvSession][];
  /** Member addresses learned through the log (absent in snapshots of older versions). */
  addresses?: [number, MemberAddresses][];
}

/** The noop a new leader appends; it changes nothing. */
export const KV_NOOP: KvCommand = { id: 'noop', op: 'noop' };

/**
 * Why a submitted command failed: this replica does not lead, or it lost its place in the log.
 * `definite` (the default) means this submission will never be applied: Raft abandoned it, or
 * it was refused before reaching the log. It is false when only the wait ended (the caller
 * stopped waiting, the server is stopping): the command may still
 * be applied.
 */
export class KvNotLeader extends Error {
  /** `leaderId`: the leader the replica knows of, when the error says so. */
  constructor(
    readonly reason: string,
    readonly leaderId?: number,
    readonly definite = true,
  ) {
    super(`${definite ? 'not applied' : 'outcome unknown'}: ${reason}`);
  }
}

/** A membership change was refused because another one is in progress (HTTP 409). */
export class KvConflict extends Error {}

/** A membership change or transfer that did not finish in the replica's own time limit (HTTP 504). */
export class KvTimeout extends Error {}

/** A request that can never succeed as sent, e.g. a transfer to a replica that is not a member (HTTP 422). */
export class KvInvalid extends Error {}

/** There is no such thing to act on, e.g. removing a replica that is not a member (HTTP 404). */
export class KvNotFound extends Error {}

/** The server is shutting down: the request was not answered, and may be retried elsewhere (HTTP 503). */
export class KvStopping extends Error {}

/**
 * A replicated key-value map. Writes go through the log (proposed with tickraft's
 * `ProposalQueue`, which hands each caller what `applyTransition` returned for its entry);
 * reads are served from the local map after `replica.readIndex()` (see http.ts), so every
 * answer is linearizable. Each client numbers its commands; a command retried after a timeout
 * (same client, seq and body) is applied once, and the retry gets the first application's
 * answer. A different body under a seq already applied, or an older seq, is refused.
 */
export class KvStateMachine implements ProposalStateMachine<KvCommand, KvSnapshot, KvResult> {
  readonly data = new Map<string, string>();
  /** Member addresses applied from the log (or a snapshot). */
  readonly addresses = new Map<number, MemberAddresses>();
  /** Called for each member address applied (or loaded from a snapshot), on every replica. */
  onMemberAddress: ((member: number, addresses: MemberAddresses) => void) | undefined;
  private readonly sessions = new Map<string, KvSession>();
  appliedIndex = 0;

  applyTransition(c: KvCommand, index: number): KvResult {
    this.appliedIndex = index;
    if (c.op === 'noop') return { ok: true, previous: undefined };
    if (c.op === 'member-address') {
      const a = { raft: c.raft, http: c.http };
      this.addresses.set(c.member, a);
      this.onMemberAddress?.(c.member, a);
      return { ok: true, previous: undefined };
    }
    const digest = digestOf(c);
    const session = this.sessions.get(c.client);
    if (session && session.seq > c.seq) {
      return { ok: false, refused: `client ${c.client} is already at seq ${session.seq}; seq ${c.seq} is old` };
    }
    if (session?.seq === c.seq) {
      // A retry of a command already applied: answer as the first time, change nothing. The
      // digest is missing only in snapshots of older versions: then the retry is trusted.
      if (session.digest !== undefined && session.digest !== digest) {
        return { ok: false, refused: `seq ${c.seq} of client ${c.client} was applied with a different command` };
      }
      return { ok: true, previous: session.result };
    }
    const before = this.data.get(c.key);
    if (c.op === 'put') this.data.set(c.key, c.value);
    else if (c.op === 'delete') this.data.delete(c.key);
    this.sessions.set(c.client, { seq: c.seq, result: before, digest });
    return { ok: true, previous: before };
  }

  createSnapshot(lastIncludedIndex: number, lastIncludedTerm: number): Snapshot<KvSnapshot> {
    return {
      lastIncludedIndex,
      lastIncludedTerm,
      data: { entries: [...this.data], sessions: [...this.sessions], addresses: [...this.addresses] },
    };
  }

  /**
   * Loads a snapshot, after checking all of it: one this version cannot read is refused (the
   * replica then drops it, saving nothing) and the state is left as it was.
   */
  setSnapshot(s: Snapshot<KvSnapshot>): void {
    checkSnapshotData(s.data);
    this.data.clear();
    for (const [k, v] of s.data.entries) this.data.set(k, v);
    this.sessions.clear();
    for (const [c, v] of s.data.sessions) this.sessions.set(c, v);
    this.addresses.clear();
    for (const [m, a] of s.data.addresses ?? []) {
      this.addresses.set(m, a);
      this.onMemberAddress?.(m, a);
    }
    this.appliedIndex = s.lastIncludedIndex;
  }
}

/** SHA-256 in base64url, one-shot where Node.js has `crypto.hash` (20.12+): a fifth of a Hash object's cost. */
const sha256: (data: string) => string =
  typeof crypto.hash === 'function'
    ? (data) => crypto.hash('sha256', data, 'base64url')
    : (data) => crypto.createHash('sha256').update(data).digest('base64url');

/** What a retry must repeat exactly: the operation, the key and the value. Every replica computes it for every write. */
function digestOf(c: KvCommand & { key: string }): string {
  return sha256(JSON.stringify([c.op, c.key, c.op === 'put' ? c.value : null]));
}

const isString = (v: unknown): v is string => typeof v === 'string';
const isPair = (v: unknown, first: (x: unknown) => boolean, second: (x: unknown) => boolean): boolean =>
  Array.isArray(v) && v.length === 2 && first(v[0]) && second(v[1]);
const isAddress = (v: unknown): boolean => {
  const a = v as Partial<KvAddress> | null;
  return typeof a === 'object' && a !== null && isString(a.host) && Number.isSafeInteger(a.port);
};
const isSession = (v: unknown): boolean => {
  const s = v as { seq?: unknown; result?: unknown; digest?: unknown } | null;
  return (
    typeof s === 'object' &&
    s !== null &&
    Number.isSafeInteger(s.seq) &&
    (s.result === undefined || isString(s.result)) &&
    (s.digest === undefined || isString(s.digest))
  );
};
const isMember = (v: unknown): boolean => {
  const m = v as Partial<MemberAddresses> | null;
  return typeof m === 'object' && m !== null && isAddress(m.raft) && isAddress(m.http);
};

/** Throws a TypeError naming the first part of `d` that is not a {@link KvSnapshot}. */
function checkSnapshotData(d: unknown): void {
  const fail = (what: string): never => {
    throw new TypeError(`unreadable snapshot: ${what}`);
  };
  if (typeof d !== 'object' || d === null) fail('the data is not an object');
  const { entries, sessions, addresses } = d as Record<string, unknown>;
  const list = (v: unknown, item: (e: unknown) => boolean): boolean => Array.isArray(v) && v.every(item);
  if (!list(entries, (e) => isPair(e, isString, isString))) fail('entries must be [key, value] string pairs');
  if (!list(sessions, (e) => isPair(e, isString, isSession))) fail('sessions must be [client, { seq, result }] pairs');
  if (addresses !== undefined && !list(addresses, (e) => isPair(e, Number.isSafeInteger, isMember))) {
    fail('addresses must be [id, { raft, http }] pairs');
  }
}
