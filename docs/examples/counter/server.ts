// A replicated counter, one process per member: the smallest real deployment of tickraft, to copy
// and grow. Each process runs one Replica over TcpCluster (replication between processes) and
// FileStorage (fsync'd to its own directory), proposes through a ProposalQueue, and serves HTTP:
//
//   POST /add/<n>  adds n on the leader, answers the new total once it is applied (a follower
//                  answers 307 to the leader); GET /  answers the total this member has applied.
//
// Run three (from a build: `npm run build`, then in three terminals):
//   node dist/docs/examples/counter/server.js 1
//   node dist/docs/examples/counter/server.js 2
//   node dist/docs/examples/counter/server.js 3
//   curl -X POST localhost:7101/add/5      (or whichever member leads: follow the redirect with -L)
//
// Member i listens for Raft on port 7000+i and for HTTP on 7100+i (7000 is $COUNTER_BASE_PORT
// when set), keeps its data in ./counter-data/<i> (or $COUNTER_DATA/<i>), and authenticates its
// peers with $COUNTER_SECRET.
import { createServer } from 'node:http';
import { join } from 'node:path';
import { NotLeaderError, ProposalQueue, Replica, type Snapshot } from 'tickraft';
import { FileStorage } from 'tickraft/file';
import { TcpCluster } from 'tickraft/tcp';

interface Add {
  readonly id: string; // unique per request, so a retried request is applied once
  readonly amount: number;
}

/** The replicated state. `applyTransition` returns the new total: what `propose()` resolves with. */
class Counter {
  total = 0;
  private readonly seen = new Set<string>(); // ids applied (grows forever here; a real app expires them)
  applyTransition(t: Add): number {
    if (t.id !== 'noop' && !this.seen.has(t.id)) {
      this.seen.add(t.id);
      this.total += t.amount;
    }
    return this.total;
  }
  createSnapshot(lastIncludedIndex: number, lastIncludedTerm: number): Snapshot<{ total: number; seen: string[] }> {
    return { lastIncludedIndex, lastIncludedTerm, data: { total: this.total, seen: [...this.seen] } };
  }
  setSnapshot(s: Snapshot<{ total: number; seen: string[] }>): void {
    this.total = s.data.total;
    this.seen.clear();
    for (const id of s.data.seen) this.seen.add(id);
  }
}

const ids = [1, 2, 3];
const id = Number(process.argv[2]);
if (!ids.includes(id)) {
  process.stderr.write('usage: server.js <1|2|3>\n');
  process.exit(2);
}
const host = '127.0.0.1';
const base = Number(process.env.COUNTER_BASE_PORT ?? 7000);
const raftAddress = (member: number) => ({ host, port: base + member });
const httpPort = (member: number) => base + 100 + member;

const counter = new Counter();
const proposals = new ProposalQueue<Add, { total: number; seen: string[] }, number>(counter);
const cluster = new TcpCluster<Add>({
  id,
  listen: raftAddress(id),
  peers: Object.fromEntries(ids.filter((p) => p !== id).map((p) => [p, raftAddress(p)])),
  secret: process.env.COUNTER_SECRET ?? 'change me: a long secret shared by the members',
});
const replica = new Replica<Add, { total: number; seen: string[] }>({
  id,
  peerIds: ids.filter((p) => p !== id),
  cluster,
  stateMachine: proposals,
  storage: new FileStorage(join(process.env.COUNTER_DATA ?? 'counter-data', String(id))),
  noopTransition: { id: 'noop', amount: 0 },
  heartbeatTimeout: 50,
  electionTimeoutRange: [300, 600],
  snapshotDelta: 10_000,
});
proposals.attach(replica);
replica.on('leader', ({ leaderId, term }) => console.log(`[${id}] term ${term}: leader ${leaderId ?? 'unknown'}`));

const http = createServer((req, res) => {
  const add = /^\/add\/(-?\d+)$/.exec(req.url ?? '');
  if (req.method === 'GET' && req.url === '/') return res.end(`${counter.total}\n`);
  if (req.method !== 'POST' || !add) return res.writeHead(404).end();
  // A client retrying after a timeout sends the same Request-Id: applied once all the same.
  const requestId = req.headers['request-id'];
  const t: Add = { id: typeof requestId === 'string' ? requestId : crypto.randomUUID(), amount: Number(add[1]) };
  proposals.propose(t, { timeoutMs: 5_000 }).then(
    (total) => res.end(`${total}\n`),
    (error: unknown) => {
      if (error instanceof NotLeaderError && error.leaderId !== undefined) {
        const location = `http://${host}:${httpPort(error.leaderId)}${req.url}`;
        return res.writeHead(307, { location }).end();
      }
      // Not known to be applied (no leader yet, a timeout, a conflict): the client retries, same Request-Id.
      res.writeHead(503).end(`${(error as Error).name}\n`);
    },
  );
});
http.listen(httpPort(id), host, () => console.log(`[${id}] http://${host}:${httpPort(id)}`));

await cluster.listen(); // before the replica's first tick, so peers can reach it at once
const running = replica.start();
const shutdown = async (): Promise<void> => {
  http.close();
  await replica.stop();
  await cluster.close();
};
process.once('SIGTERM', () => void shutdown());
process.once('SIGINT', () => void shutdown());
await running;
