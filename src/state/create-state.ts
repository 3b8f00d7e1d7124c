import type { Config } from '../config/schema.js';
import type { Logger } from '../logging/logger.js';
import { SingleReplicaCoordinator, type Coordinator } from './coordinator.js';
import { PostgresCoordinator } from './postgres-coordinator.js';
import { PostgresStateStore } from './postgres-store.js';
import { isPostgresUrl, registerPostgresSecrets } from './postgres-url.js';
import { SqliteStateStore } from './sqlite-store.js';
import type { StateStore } from './state-store.js';

/** The store state.path names: a postgres:// or postgresql:// URL, else a SQLite file. */
export function createStateStore(state: Config['state'], logger: Logger): StateStore {
  if (!isPostgresUrl(state.path)) return new SqliteStateStore({ path: state.path, logger });
  registerPostgresSecrets(state.path);
  return new PostgresStateStore({ url: state.path, logger });
}

/** Leases and leader election on PostgreSQL; one replica that always leads elsewhere. */
export function createCoordinator(
  store: StateStore,
  state: Config['state'],
  logger: Logger,
  onLeaderChange: (leader: boolean) => void,
): Coordinator {
  if (!(store instanceof PostgresStateStore)) return new SingleReplicaCoordinator();
  // Two connections of its own, so lease renewals never wait behind syncs or scrapes; a
  // renewal the database holds up is cut off after half a lease, so the next one retries
  // while the leases still run.
  const leaseMillis = state.leaseSeconds * 1000;
  const leases = new PostgresStateStore({
    url: state.path,
    logger,
    maxConnections: 2,
    applicationName: 'pulumi-update-exporter leases',
    statementTimeoutMillis: Math.max(1_000, Math.floor(leaseMillis / 2)),
  });
  return new PostgresCoordinator({ store: leases, ownsStore: true, leaseMillis, logger, onLeaderChange });
}
