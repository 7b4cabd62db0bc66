// Membership survives a restart of every process (issue 9, item 1): a 3-process tickraft-kv
// cluster grows to 5, writes until its configuration entries are compacted into snapshots
// (small --snapshot-delta), then every process restarts with the flags it was first started
// with (the first three still name only 1, 2, 3). Each must take its membership from its
// FileStorage: all report 5 voters, and with two of the original three stopped, the other three
// (a majority of five) elect a leader and serve a write. No fixed sleeps; children are killed.
import { existsSync } from 'node:fs';
import { Agent } from 'node:http';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { KvClient } from '../../docs/examples/kv/client.js';
import { KvProcesses, waitFor } from '../../docs/examples/kv/processes.js';
import { FileStorage } from '../../src/file.js';

const serverJs = fileURLToPath(new URL('../../dist/docs/examples/kv/server.js', import.meta.url));
const WAIT = 30_000;
const DELTA = 10;
const ALL = [1, 2, 3, 4, 5];

describe('a tickraft-kv cluster grown from 3 to 5 and compacted keeps 5 voters across a restart of all', () => {
  let cluster: KvProcesses | undefined;
  const agent = new Agent({ keepAlive: true, maxSockets: 8 });

  afterAll(async () => {
    agent.destroy();
    await cluster?.destroy();
  }, WAIT);

  it('all report 5 voters after the restart; with two stopped, the other three elect and serve a write', async () => {
    if (!existsSync(serverJs)) throw new Error(`${serverJs} is missing: run tsc -p tsconfig.json first`);
    const c = (cluster = await KvProcesses.create(serverJs, [1, 2, 3], ['--snapshot-delta', String(DELTA), '--quiet']));
    const logs = (): string => c.ids.map((id) => `--- replica ${id} ---\n${c.logTail(id)}`).join('\n');
    const withLogs = (e: Error): never => {
      throw new Error(`${e.message}\n${logs()}`);
    };
    c.start();
    await c.waitForLeader([1, 2, 3], WAIT).catch(withLogs);
    for (const id of [4, 5]) {
      await c.prepareJoin(id);
      c.spawn(id);
      await c
        .leaderRequest(
          'POST',
          '/members',
          c.joinBody(id),
          ALL.filter((m) => m < id),
          WAIT,
        )
        .catch(withLogs);
    }
    const leader = await c.waitForLeader(ALL, WAIT).catch(withLogs);
    const configured = (await c.status(leader.id))!.status.commitIndex;

    // Enough writes that every member's snapshot passes the configuration entries.
    const client = new KvClient({ origins: c.origins, clientId: 'restart-membership', agent, deadline: 20_000 });
    for (let i = 0; i < 3 * DELTA; i++) await client.put(`k${i}`, `v${i}`);
    const target = (await c.status((await c.waitForLeader(ALL, WAIT)).id))!.status.commitIndex;
    await waitFor(
      'every member to apply every write',
      async () => {
        const all = await Promise.all(ALL.map((id) => c.status(id)));
        return all.every((s) => s !== undefined && s.status.lastApplied >= target) ? true : undefined;
      },
      WAIT,
    ).catch(withLogs);
    for (const code of (await c.stopAll()).values()) expect(code).toBe(0);
    for (const id of ALL) {
      const storage = new FileStorage<unknown, unknown>(c.dataDir(id));
      const saved = await storage.load();
      await storage.close();
      expect(saved.snapshot?.lastIncludedIndex, `snapshot of ${id}`).toBeGreaterThan(configured);
      expect(
        saved.entries.filter((e) => e.config),
        `configuration entries left in ${id}'s log`,
      ).toEqual([]);
    }

    for (const id of ALL) c.spawn(id, c.startedArgs(id));
    // The first membership each reports is the one it loaded: none has heard from another yet.
    for (const id of ALL) {
      const status = await waitFor(
        `member ${id} to load`,
        async () => {
          const s = await c.status(id);
          return s?.membership ? s : undefined;
        },
        WAIT,
      ).catch(withLogs);
      expect(status.membership, `voters of ${id} after the restart`).toEqual(ALL);
    }

    for (const id of [1, 2]) expect(await c.kill(id, 'SIGTERM')).toBe(0);
    const rest = [3, 4, 5];
    const next = await c.waitForLeader(rest, WAIT).catch(withLogs);
    expect(rest).toContain(next.id);
    const origins = rest.map((id) => c.origin(id));
    const after = new KvClient({ origins, clientId: 'after-restart', agent, deadline: 20_000 });
    await after.put('after', 'restart');
    expect(await after.get('after')).toBe('restart');
  }, 90_000);
});
