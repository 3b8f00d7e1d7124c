import { MemoryStateStore } from '../../../src/state/memory-store.js';
import { stateStoreContract } from './state-store-contract.js';

stateStoreContract('MemoryStateStore', async () => {
  const store = new MemoryStateStore();
  return { store, cleanup: () => store.close() };
});
