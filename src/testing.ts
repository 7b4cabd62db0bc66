/**
 * tickraft/testing: what a test of a state machine needs to run replicas deterministically in
 * one process: `LocalNetwork` (a seeded network on a virtual clock, with loss, duplication,
 * delays, partitions and crash/restart) and seeded randomness for the replicas' `random` option;
 * and what a test of a user-written `Storage` needs: the Storage conformance suite
 * (`storageConformanceChecks`), the one tickraft runs against its own storages.
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
export {
  storageConformanceChecks,
  checkStorageConformance,
  StorageConformanceError,
  type StorageConformanceCheck,
  type StorageConformanceOptions,
  type StorageUnderTest,
} from './testing/storage-conformance.js';
