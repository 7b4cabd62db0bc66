/**
 * tickraft/testing: what a test of a state machine needs to run replicas deterministically in
 * one process: `LocalNetwork` (a seeded network on a virtual clock, with loss, duplication,
 * delays, partitions and crash/restart) and seeded randomness for the replicas' `random` option.
 * @packageDocumentation
 * @module tickraft/testing
 */
export {
  LocalNetwork,
  type LocalCluster,
  type LocalNetworkOptions,
  type FaultOptions,
  type NetworkStats,
} from './sim/local-network.js';
export { seededRandom, deriveSeed } from './sim/random.js';
