import { afterEach, describe, expect, it } from 'vitest';
import { RaftHost, isValidEnvelope } from '../../src/multi.js';
import { TcpCluster, TcpHostNetwork, envelopeCodec, msgpackCodec, type TcpClusterOptions } from '../../src/tcp.js';
import { HOST, SECRET, waitFor } from '../transport/fixtures/harness.js';
import { RecordingStateMachine, type TestTransition } from '../helpers/recording-state-machine.js';
import { testGroup } from './hosts.js';

type Net = TcpHostNetwork<TestTransition>;
let cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

/** Three processes over TCP, each hosting a member of every one of `groups` groups. */
async function tcpHosts(groups: number) {
  const ids = [1, 2, 3];
  const nets = new Map<number, Net>();
  for (const id of ids) {
    const net: Net = new TcpHostNetwork({ id, listen: { host: HOST, port: 0 }, secret: SECRET });
    await net.tcp.listen();
    nets.set(id, net);
  }
  for (const [a, na] of nets)
    for (const [b, nb] of nets) if (a !== b) na.tcp.addPeer(b, { host: HOST, port: nb.tcp.port });
  const sms = new Map<string, RecordingStateMachine>();
  const hosts = ids.map((id) => {
    const host = new RaftHost<TestTransition>({ id, network: nets.get(id)!, livenessInterval: 50, suspectAfter: 200 });
    for (let g = 1; g <= groups; g++) {
      const sm = new RecordingStateMachine(id);
      sms.set(`${g}/${id}`, sm);
      host.createGroup(g, { ...testGroup(ids, sm), heartbeatTimeout: 50, electionTimeoutRange: [300, 600] });
    }
    const running = host.start();
    cleanup.push(async () => {
      await host.stop();
      await nets.get(id)!.tcp.close();
      await running;
    });
    return host;
  });
  return { ids, nets, hosts, sms };
}

/**
 * A TcpCluster as process 4, a host's rogue peer (with the envelope codec unless `extra` says
 * otherwise), linked both ways with `target`.
 */
async function rogueLinkedTo(
  target: TcpCluster<TestTransition>,
  targetId: number,
  extra: Partial<TcpClusterOptions> = {},
) {
  const rogue = new TcpCluster<TestTransition>({
    id: 4,
    listen: { host: HOST, port: 0 },
    secret: SECRET,
    codec: envelopeCodec(),
    ...extra,
  });
  cleanup.push(() => rogue.close());
  await rogue.listen();
  target.addPeer(4, { host: HOST, port: rogue.port });
  rogue.addPeer(targetId, { host: HOST, port: target.port });
  return rogue;
}

describe('RaftHost over TCP (TcpHostNetwork)', { timeout: 30_000 }, () => {
  it('elects and commits in every group over one connection per pair of processes, one frame per envelope', async () => {
    const { ids, nets, hosts, sms } = await tcpHosts(8);
    const carrying = new Map(ids.map((id) => [id, 0]));
    for (const [id, net] of nets) {
      const send = net.send.bind(net);
      net.send = (to, envelope) => {
        if (envelope.messages.length > 0) carrying.set(id, carrying.get(id)! + 1);
        send(to, envelope);
      };
    }
    const leader = (g: number) => hosts.find((h) => h.group(g)!.status.role === 'leader');
    await waitFor(() => [1, 2, 3, 4, 5, 6, 7, 8].every((g) => leader(g) !== undefined), 'a leader in every group');
    for (let g = 1; g <= 8; g++) {
      const h = leader(g)!;
      sms.get(`${g}/${h.id}`)!.submit({ id: `w${g}` });
      h.group(g)!.wake();
    }
    await waitFor(
      () =>
        [1, 2, 3, 4, 5, 6, 7, 8].every((g) => ids.every((id) => sms.get(`${g}/${id}`)!.appliedIds.includes(`w${g}`))),
      'every write applied on every member',
    );
    for (const h of hosts) {
      const tcp = nets.get(h.id)!.tcp;
      expect(tcp.connectedPeers.length).toBe(2);
      // Every frame is one envelope, and the envelopes that carried messages carried several on
      // average. (Not messages against all frames: how many empty liveness envelopes a run
      // sends depends on the machine's speed.)
      expect(tcp.stats.framesOut).toBeLessThanOrEqual(h.stats.envelopesSent);
      expect(h.stats.messagesSent).toBeGreaterThan(carrying.get(h.id)!);
    }
    // Then the groups go quiet, and only the processes' own heartbeats cross.
    await waitFor(() => hosts.every((h) => h.groupIds().every((g) => h.isQuiescent(g))), 'every group quiescent');
  });

  it('refuses a frame that is not an envelope from the authenticated peer', async () => {
    const { nets } = await tcpHosts(1);
    const target = nets.get(1)!.tcp;
    const rogue = await rogueLinkedTo(target, 1);
    const before = target.stats.badFrames;
    // A plain Raft message, valid as such, is not an envelope.
    rogue.sendMessage(1, { type: 'timeoutNow', from: 4, term: 1 });
    await waitFor(() => target.stats.badFrames > before, 'the frame refused');
  });

  it('carries appends in columns inside an envelope and rebuilds them; a malformed one is dropped alone', async () => {
    const nets = new Map<number, Net>();
    for (const id of [1, 2]) {
      const net: Net = new TcpHostNetwork({ id, listen: { host: HOST, port: 0 }, secret: SECRET });
      cleanup.push(() => net.tcp.close());
      await net.tcp.listen();
      nets.set(id, net);
    }
    const [a, b] = [nets.get(1)!, nets.get(2)!];
    a.tcp.addPeer(2, { host: HOST, port: b.tcp.port });
    b.tcp.addPeer(1, { host: HOST, port: a.tcp.port });
    const entries = [1, 2, 3].map((i) => ({
      index: 4 + i,
      term: 2,
      transition: { id: `t${i}` },
      kind: 'transition' as const,
    }));
    const append = {
      type: 'append',
      from: 1,
      term: 2,
      prevLogIndex: 4,
      prevLogTerm: 1,
      entries,
      leaderCommit: 4,
      round: 7,
    };
    const vote = { type: 'voteResponse', from: 1, term: 2, granted: true };
    const envelope = {
      from: 1,
      epoch: 5,
      messages: [
        [3, append],
        [9, vote],
      ],
      quiesce: [[4, 2, 6]],
      wake: [8],
    };
    a.send(2, envelope as never);
    const received: unknown[] = [];
    await waitFor(() => (received.push(...b.receive()), received.length > 0), 'the envelope');
    expect(received).toEqual([envelope]);
    // On the wire the append is columns (an array), the vote a plain map.
    const sent = (msgpackCodec.decode(envelopeCodec().encode(envelope)) as typeof envelope).messages;
    expect(Array.isArray(sent[0]![1])).toBe(true);
    expect(sent[1]![1]).toEqual(vote);

    // A peer sending columns that do not make an append loses that message only.
    const rogue = await rogueLinkedTo(b.tcp, 2);
    const vote4 = { ...vote, from: 4 };
    const bad = {
      from: 4,
      epoch: 1,
      messages: [
        [3, [0, 4, 2, 'not an index']],
        [9, vote4],
      ],
      quiesce: [],
      wake: [],
    };
    rogue.sendMessage(2, bad as never);
    const fromRogue: unknown[] = [];
    await waitFor(() => (fromRogue.push(...b.receive()), fromRogue.length > 0), 'the rogue envelope');
    expect(fromRogue).toEqual([{ ...bad, messages: [[9, vote4]] }]);
  });

  it('refuses at the handshake a peer whose codec does not name the envelope form, and checks the name', async () => {
    const { nets } = await tcpHosts(1);
    const events: { type: string; reason?: string }[] = [];
    // A TcpCluster with the plain codec: what a host from before appends travelled in columns sends.
    const old = await rogueLinkedTo(nets.get(1)!.tcp, 1, {
      codec: msgpackCodec,
      onEvent: (e) => events.push(e as { type: string; reason?: string }),
    });
    await waitFor(() => old.stats.authFailures > 0, 'the handshake refused');
    expect(
      events.some((e) => e.type === 'authFailure' && /codec mismatch.*msgpack\/3\+env2/.test(e.reason ?? '')),
    ).toBe(true);
    expect(envelopeCodec().name).toBe(`${msgpackCodec.name}+env2`);
    const long = { ...msgpackCodec, name: 'x'.repeat(60) };
    expect(() => new TcpHostNetwork({ id: 1, listen: { host: HOST, port: 0 }, secret: SECRET, codec: long })).toThrow(
      /at most 59 characters/,
    );
  });

  it('isValidEnvelope checks the shape and the sender', () => {
    const ok = { from: 2, epoch: 1, messages: [[1, { type: 'x', from: 2, term: 1 }]], quiesce: [[1, 2, 3]], wake: [4] };
    expect(isValidEnvelope(ok, 2)).toBe(true);
    expect(isValidEnvelope(ok, 3)).toBe(false);
    for (const bad of [
      null,
      'x',
      { ...ok, epoch: 'one' },
      { ...ok, messages: {} },
      { ...ok, messages: [[1.5, {}]] },
      { ...ok, messages: [[1, null]] },
      { ...ok, quiesce: [[1, 2]] },
      { ...ok, wake: ['a'] },
    ])
      expect(isValidEnvelope(bad, 2)).toBe(false);
  });
});
