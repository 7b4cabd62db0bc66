// Membership changes end to end: a 3-process tickraft-kv cluster grows to 5 (two processes
// started with --join and added by POST /members on the leader) and shrinks back to 3
// (DELETE /members/<id>, the leader first), while a background writer keeps writing. Nothing
// acknowledged may be lost. No fixed sleeps: every wait polls with a bound; children are killed.
import { existsSync } from 'node:fs';
import { Agent } from 'node:http';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KvClient, httpRequest } from '../../docs/examples/kv/client.js';
import { KvProcesses, waitFor } from '../../docs/examples/kv/processes.js';

const serverJs = fileURLToPath(new URL('../../dist/docs/examples/kv/server.js', import.meta.url));
const WAIT = 30_000;
const LANES = 3;

describe('a tickraft-kv cluster grows from 3 to 5 processes and shrinks to 3 under writes', () => {
  let cluster: KvProcesses;
  const agent = new Agent({ keepAlive: true, maxSockets: 32 });
  /** The origins the writer's clients try; changed in place as members come and go. */
  const origins: string[] = [];
  const acked = new Map<string, string>();
  const failed: string[] = [];
  let writing = true;
  let writer: Promise<void> = Promise.resolve();
  let voters = [1, 2, 3];

  const logs = (): string => cluster.ids.map((id) => `--- replica ${id} ---\n${cluster.logTail(id)}`).join('\n');
  const withLogs = (e: Error): never => {
    throw new Error(`${e.message}\n${logs()}`);
  };

  beforeAll(async () => {
    if (!existsSync(serverJs)) throw new Error(`${serverJs} is missing: run tsc -p tsconfig.json first`);
    cluster = await KvProcesses.create(serverJs, [1, 2, 3]);
    cluster.start();
    origins.push(...cluster.origins);
    await cluster.waitForLeader(voters, WAIT);
    // The background writer: each lane a sequential session; each write retried up to 20 s.
    writer = Promise.all(
      Array.from({ length: LANES }, async (_, lane) => {
        const client = new KvClient({ origins, clientId: `membership-${lane}`, agent, deadline: 20_000 });
        for (let i = 0; writing; i++) {
          const key = `lane${lane}-${String(i).padStart(5, '0')}`;
          try {
            await client.put(key, `v${i}`);
            acked.set(key, `v${i}`);
          } catch (error) {
            failed.push(`${key}: ${(error as Error).message}`);
          }
        }
      }),
    ).then(() => undefined);
  }, WAIT);

  afterAll(async () => {
    writing = false;
    await writer.catch(() => undefined);
    agent.destroy();
    await cluster?.destroy();
  }, WAIT);

  const waitForWrites = async (more: number): Promise<void> => {
    const target = acked.size + more;
    await waitFor(`${target} acknowledged writes`, () => (acked.size >= target ? true : undefined), WAIT).catch(
      withLogs,
    );
  };

  /** Waits until every member in `ids` lists `voters` and has applied the leader's commit index; returns their dumps. */
  async function converged(ids: number[]) {
    await waitFor(
      `members ${ids.join(',')} to list ${voters.join(',')}`,
      async () => {
        const all = await Promise.all(ids.map((id) => cluster.status(id)));
        return all.every((s) => JSON.stringify(s?.membership) === JSON.stringify(voters)) ? true : undefined;
      },
      WAIT,
    ).catch(withLogs);
    const leader = await cluster.waitForLeader(ids, WAIT);
    const target = (await cluster.status(leader.id))!.status.commitIndex;
    await waitFor(
      'every member to apply everything',
      async () => {
        const all = await Promise.all(ids.map((id) => cluster.status(id)));
        return all.every((s) => s !== undefined && s.status.lastApplied >= target) ? true : undefined;
      },
      WAIT,
    ).catch(withLogs);
    return Promise.all(ids.map((id) => cluster.dump(id)));
  }

  it('adds a 4th and a 5th process through POST /members; all five hold the data', async () => {
    await waitForWrites(50);
    for (const id of [4, 5]) {
      await cluster.prepareJoin(id);
      cluster.spawn(id);
      const a = await cluster.leaderRequest('POST', '/members', cluster.joinBody(id), voters, WAIT).catch(withLogs);
      expect(JSON.parse(a.body)).toEqual({ added: id });
      voters = [...voters, id];
      origins.push(cluster.origin(id));
      await waitForWrites(30);
    }
    const before = new Map(acked);
    const dumps = await converged(voters);
    for (const d of dumps) for (const [k, v] of before) expect(d.data[k], `${k} on ${d.id}`).toBe(v);
    const status = await cluster.status(5);
    expect(status?.membership).toEqual([1, 2, 3, 4, 5]);
  }, 90_000);

  it('removes the leader and one more member through DELETE /members; the other three carry on', async () => {
    const first = await cluster.waitForLeader(voters, WAIT);
    const second = [1, 2, 3].find((id) => id !== first.id)!;
    for (const id of [first.id, second]) {
      const a = await cluster.leaderRequest('DELETE', `/members/${id}`, undefined, voters, WAIT).catch(withLogs);
      expect(JSON.parse(a.body)).toEqual({ removed: id });
      voters = voters.filter((v) => v !== id);
      // A new leader among the remaining members serves writes before the removed one stops.
      await cluster.waitForLeader(voters, WAIT).catch(withLogs);
      await waitForWrites(30);
      origins.splice(origins.indexOf(cluster.origin(id)), 1);
      expect(await cluster.kill(id, 'SIGTERM')).toBe(0);
      cluster.forget(id);
    }
    // Removing a replica that is not a member is a 404, not a "removed" that did nothing.
    const leader = await cluster.waitForLeader(voters, WAIT);
    const none = await httpRequest(`${cluster.origin(leader.id)}/members/99`, { method: 'DELETE' });
    expect(none.status, none.body).toBe(404);
    await waitForWrites(50);
    writing = false;
    await writer;
    const dumps = await converged(voters);
    expect(voters).toHaveLength(3);
    for (const d of dumps) expect(d.data).toEqual(dumps[0]!.data);
    const lost = [...acked].filter(([k, v]) => dumps[0]!.data[k] !== v);
    expect(lost, 'acknowledged writes missing').toEqual([]);
    expect(failed, 'writes that got no answer within 20 s').toEqual([]);
    expect(acked.size).toBeGreaterThan(200);
  }, 120_000);
});
