import { describe, it } from 'vitest';
import { MemoryStorage } from '../../src/storage/memory.js';
import { storageConformanceChecks } from '../../src/testing.js';

describe('Storage contract: MemoryStorage', () => {
  const checks = storageConformanceChecks(() => {
    // In memory, the storage a restarted replica finds is the same instance.
    const storage = new MemoryStorage();
    return { open: () => storage };
  });
  for (const check of checks) it(check.name, check.run);
});
