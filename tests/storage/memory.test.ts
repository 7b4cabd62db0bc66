import { MemoryStorage } from '../../src/storage/memory.js';
import { storageSuite, type Tr } from './storage-suite.js';

storageSuite('MemoryStorage', async () => {
  const storage = new MemoryStorage<Tr, unknown>();
  return { storage, reopen: async () => storage, cleanup: async () => {} };
});
