import { SqliteStateStore } from '../../src/state/sqlite-store.js';

/** The fast store for tests of the layers above the store: the real SQLite store on `:memory:`, migrated. */
export async function memoryStore(): Promise<SqliteStateStore> {
  const store = new SqliteStateStore({ path: ':memory:' });
  await store.migrate();
  return store;
}
