import { LocalNetwork, MemoryStorage, type Storage } from '../../src/index.js';
import { RaftHost, localHostNetwork, type GroupOptions } from '../../src/multi.js';
import type { RecordingStateMachine, TestTransition } from '../helpers/recording-state-machine.js';

/** A host on node `id` of a simulated network: `epoch` 0 is its first start, a higher one a restart. */
export function simHost(net: LocalNetwork<never>, id: number, epoch: number, quiesce = true): RaftHost<TestTransition> {
  return new RaftHost<TestTransition>({
    id,
    network: localHostNetwork(epoch === 0 ? net.cluster(id) : net.restart(id)),
    clock: net.clock,
    epoch,
    livenessInterval: 20,
    suspectAfter: 60,
    quiesce,
  });
}

/** The options of a test group on `members`, with short timeouts (heartbeat 20 ms, elections 100–200 ms). */
export function testGroup(
  members: number[],
  stateMachine: RecordingStateMachine,
  storage: Storage<TestTransition, unknown> = new MemoryStorage(),
  random?: () => number,
): GroupOptions<TestTransition> {
  return {
    members,
    stateMachine,
    noopTransition: { id: 'noop' },
    heartbeatTimeout: 20,
    electionTimeoutRange: [100, 200],
    storage,
    ...(random ? { random } : {}),
  };
}
