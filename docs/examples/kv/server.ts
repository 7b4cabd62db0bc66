#!/usr/bin/env node
// tickraft-kv: one replica of a replicated key-value store, as its own process, serving an HTTP
// API (see http.ts). Writes go through the log; reads use the read index (no log write); both
// are linearizable. Behind the API runs an engine (engine.ts): one Replica on a FileStorage and
// a TcpCluster (single.ts), or with --groups N a RaftHost of N groups on one SharedLog and a
// TcpHostNetwork, each key in the group its hash names (sharded.ts). This file owns the
// process: flags, logs, startup, and the drain on SIGTERM.
//
//   tickraft-kv --id 1 --data ./data/1 --secret 'a long shared secret' \
//     --peers 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003 \
//     --http 1=127.0.0.1:8001,2=127.0.0.1:8002,3=127.0.0.1:8003 [--groups 64]
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import type { KvEngine } from './engine.js';
import { USAGE, UsageError, httpOrigin, parseFlags, type ServerFlags } from './flags.js';
import { kvRequestListener } from './http.js';
import { kvLogger } from './log.js';
import { shardedEngine } from './sharded.js';
import { singleEngine } from './single.js';
import { statusCommand } from './status.js';

/** The version in the package.json of the tickraft package this file belongs to. */
function version(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    try {
      const p = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (p.name === 'tickraft') return p.version ?? 'unknown';
    } catch {
      /* not here: look further up */
    }
    if (dirname(dir) === dir) return 'unknown';
  }
}

let flags: ServerFlags | 'help' | 'version';
try {
  if (process.argv[2] === 'status') process.exit(await statusCommand(process.argv.slice(3)));
  flags = parseFlags(process.argv.slice(2), process.env);
} catch (error) {
  if (!(error instanceof UsageError)) throw error;
  process.stderr.write(`tickraft-kv: ${error.message}\n\n${USAGE}\n`);
  process.exit(2);
}
if (flags === 'help' || flags === 'version') {
  process.stdout.write(flags === 'help' ? `${USAGE}\n` : `tickraft-kv ${version()}\n`);
  process.exit(0);
}
const f = flags;
const logger = kvLogger(f.id, f.logLevel);
const log = (what: string): void => logger.info(what);
const fail = (what: string): void => logger.error(what);
/** A fatal startup error: one line on stderr (and in the log), then the exit code. */
const fatal = (what: string): void => {
  logger.fatal(what);
  process.stderr.write(`[kv ${f.id}] ${new Date().toISOString()} ERROR ${what}\n`);
};

const context = { flags: f, logger, log, fail, shutdown };
const engine: KvEngine = f.groups > 1 ? shardedEngine(context) : singleEngine(context);

const http = createServer(
  { keepAliveTimeout: 10_000 },
  kvRequestListener({
    ...engine.backend,
    id: f.id,
    timeout: f.timeout,
    isStopping: () => stopping !== undefined,
  }),
);

let loop: Promise<void> = Promise.resolve();
let stopping: Promise<void> | undefined;
/**
 * Drains and stops: new requests are answered 503; the replicas stop (the tick in progress
 * finishes, pending reads and membership changes reject, the storage closes); writes still
 * waiting are answered 503 (they may yet commit: a retry with the same client and seq is safe);
 * then the network closes, and the process exits once the answers are out.
 */
function shutdown(code: number, why: string): Promise<void> {
  stopping ??= (async () => {
    log(`shutting down: ${why}`);
    const force = setTimeout(() => {
      fail('shutdown took over 5 s; exiting');
      process.exit(code || 1);
    }, 5000);
    force.unref();
    http.close();
    http.closeIdleConnections();
    await engine.stop();
    await loop.catch(() => undefined);
    await engine.close();
    // Let the 503s just written reach their clients before the connections go.
    await new Promise((resolve) => setImmediate(resolve));
    http.closeAllConnections();
    log('stopped');
    process.exit(code);
  })();
  return stopping;
}
process.on('SIGTERM', () => void shutdown(0, 'SIGTERM'));
process.on('SIGINT', () => void shutdown(0, 'SIGINT'));

// Opening the data directory and loading what it holds: a directory that cannot be used fails
// here, in one line, before any port is taken.
try {
  await engine.open();
} catch (error) {
  if (!stopping) {
    fatal(`cannot use --data ${f.data}: ${(error as Error)?.message ?? String(error)}`);
    await engine.close();
    process.exit(1);
  }
}
if (stopping) await stopping; // a signal came during startup: the shutdown exits the process

// Which flag named the address that cannot be used: said in the one line, with the address.
let listening = `--peers ${f.id}=${f.peers.get(f.id)!.host}:${f.peers.get(f.id)!.port} (raft)`;
let raftPort = 0;
try {
  raftPort = await engine.listen();
  const a = f.http.get(f.id)!;
  listening = `--http ${f.id}=${a.host}:${a.port}`;
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(a.port, a.host, () => {
      http.off('error', reject);
      resolve();
    });
  });
} catch (error) {
  const code = (error as NodeJS.ErrnoException).code;
  const why = code === 'EADDRINUSE' ? 'the port is in use' : (error as Error).message;
  fatal(`cannot listen on ${listening}: ${why}`);
  await engine.close();
  process.exit(1);
}
const raftAddress = `${f.peers.get(f.id)!.host}:${raftPort}`;
const groups = f.groups > 1 ? `, ${f.groups} groups` : '';
log(`raft on ${raftAddress}, HTTP on ${httpOrigin(f.http.get(f.id)!)}, data in ${f.data}${groups}`);

loop = engine.run();
loop.then(
  () => {
    if (!stopping) void shutdown(1, 'the replica stopped');
  },
  (error: unknown) => {
    fail(`the replica failed: ${(error as Error)?.stack ?? String(error)}`);
    void shutdown(1, 'replica failure');
  },
);
