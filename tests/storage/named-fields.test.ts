import { describe, it } from 'vitest';
import { storageConformanceChecks } from '../../src/testing.js';
import { NamedFieldsStorage } from '../helpers/named-fields-storage.js';

// The contract suite against a user-written storage that keeps only the fields the types name.
describe('Storage contract: a user-written storage keeping exactly the named fields', () => {
  const checks = storageConformanceChecks(() => {
    const storage = new NamedFieldsStorage();
    return { open: () => storage };
  });
  for (const check of checks) it(check.name, check.run);
});
