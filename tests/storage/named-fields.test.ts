import { NamedFieldsStorage } from '../helpers/named-fields-storage.js';
import { storageSuite, type Tr } from './storage-suite.js';

// The contract suite against a user-written storage that keeps only the fields the types name.
storageSuite('a user-written storage keeping exactly the named fields', async () => {
  const storage = new NamedFieldsStorage<Tr, unknown>();
  return { storage, reopen: async () => storage, cleanup: async () => {} };
});
