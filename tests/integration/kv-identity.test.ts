// One identity, one process: a second tickraft-kv started with a running member's id (and the
// right secret) is refused by the members and exits with one clear line, without disturbing the
// cluster; a member restarted after a SIGKILL still rejoins at once. Real processes, real TCP.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KvClient } from '../../docs/examples/kv/client.js';
import { freePorts, KvProcesses, waitFor } from '../../docs/examples/kv/processes.js';

const serverJs = fileURLToPath(new URL('../../dist/docs/examples/kv/server.js', import.meta.url));
const WAIT = 20_000;

describe('a second process with a running member id', () => {
  let cluster: KvProcesses;

  beforeAll(async () => {
    if (!existsSync(serverJs)) throw new Error(`${serverJs} is missing: run tsc -p tsconfig.json first`);
    cluster = await KvProcesses.create(serverJs);
    cluster.start();
  });
  afterAll(async () => {
    await cluster?.destroy();
  });

  const lines = (id: number, pattern: RegExp): number =>
    cluster.members.get(id)!.log.filter((l) => pattern.test(l)).length;
  const logs = (): string => cluster.ids.map((id) => `--- replica ${id} ---\n${cluster.logTail(id)}`).join('\n');

  it('is refused and exits with a clear message; the leader keeps its term; no reconnection storm', async () => {
    const leader = await cluster.waitForLeader(cluster.ids, WAIT);
    const client = new KvClient({ origins: cluster.origins, clientId: 'identity', deadline: WAIT });
    await client.put('before', '1');
    // The baseline is taken once members 2 and 3 have both logged their connection to member 1.
    const connected = /raft peer 1 connected/;
    await waitFor(
      '2 and 3 connected to 1',
      () => (lines(2, connected) > 0 && lines(3, connected) > 0 ? true : undefined),
      WAIT,
    );
    const peerLines = [2, 3].map((id) => lines(id, /raft peer 1 (dis)?connected/));

    // The twin: id 1, the cluster's secret, its own ports and directory, the real members 2 and 3.
    const [raft, web] = await freePorts(2);
    const m = (id: number): { raftPort: number; httpPort: number } => cluster.members.get(id)!;
    const twin = spawn(
      process.execPath,
      [
        serverJs,
        '--id',
        '1',
        '--data',
        join(cluster.dir, 'twin'),
        '--secret',
        cluster.secret,
        '--peers',
        `1=127.0.0.1:${raft},2=127.0.0.1:${m(2).raftPort},3=127.0.0.1:${m(3).raftPort}`,
        '--http',
        `1=127.0.0.1:${web},2=127.0.0.1:${m(2).httpPort},3=127.0.0.1:${m(3).httpPort}`,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    // The log is JSON lines on stdout (pino); anything else on stderr is kept too.
    let output = '';
    twin.stderr.on('data', (c: Buffer) => {
      output += c.toString();
    });
    twin.stdout.on('data', (c: Buffer) => {
      output += c.toString();
    });
    const killer = setTimeout(() => twin.kill('SIGKILL'), WAIT);
    const code = await new Promise<number | null>((resolve) => twin.once('exit', resolve));
    clearTimeout(killer);

    expect(code, output).toBe(1);
    const entries = output
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { level: number; msg: string });
    // pino levels: 50 is error, 60 fatal.
    const errors = entries.filter((e) => e.level >= 50).map((e) => e.msg);
    expect(errors, output).toHaveLength(1);
    expect(errors[0]).toMatch(/another process is running as replica 1 \(replica [23] refused this replica's id 1: /);
    expect(errors[0]).toMatch(/replica 1 is already connected from .* and answering\); exiting$/);
    expect(output).not.toMatch(/raft peer \d connected/);
    // The members said why, and never let go of the real member 1.
    const refusal = /refused a second process claiming replica 1/;
    const refusals = (): number => lines(2, refusal) + lines(3, refusal);
    await waitFor('a member to log the refusal', () => (refusals() > 0 ? true : undefined), WAIT);
    expect([2, 3].map((id) => lines(id, /raft peer 1 (dis)?connected/))).toEqual(peerLines);
    const after = await cluster.waitForLeader(cluster.ids, WAIT);
    expect(after).toEqual(leader);
    await client.put('after', '2');
    expect(await cluster.waitForLeader(cluster.ids, WAIT)).toEqual(leader);
  }, 60_000);

  it('still lets a SIGKILLed member rejoin at once under its id', async () => {
    const refusals = [2, 3].map((id) => lines(id, /second process/));
    await cluster.kill(1, 'SIGKILL');
    cluster.spawn(1);
    const client = new KvClient({ origins: cluster.origins, clientId: 'identity-restart', deadline: WAIT });
    await client.put('restarted', '3');
    const leader = await cluster.waitForLeader(cluster.ids, WAIT);
    const target = (await cluster.status(leader.id))!.status.commitIndex;
    const applied = async (): Promise<number> => (await cluster.status(1))?.status.lastApplied ?? 0;
    await waitFor('member 1 to catch up', async () => (await applied()) >= target || undefined, WAIT).catch(
      (e: Error) => {
        throw new Error(`${e.message}\n${logs()}`);
      },
    );
    expect(
      [2, 3].map((id) => lines(id, /second process/)),
      logs(),
    ).toEqual(refusals);
    expect(lines(1, /another process/)).toBe(0);
    expect(cluster.members.get(1)!.child!.exitCode).toBeNull();
  }, 60_000);
});
