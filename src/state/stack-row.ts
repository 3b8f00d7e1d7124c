import type { StackRecord } from './state-store.js';

/** A `stacks` row as both SQL stores hold it (column names of their schemas). */
export interface StackRow {
  org: string;
  project: string;
  stack: string;
  last_update: number | null;
  resource_count: number | null;
  synced_last_update: number | null;
  cursor_version: number;
  first_seen_ms: number;
}

/** The StackRecord of a row; NULL columns become absent fields. */
export function toStackRecord(r: StackRow): StackRecord {
  return {
    org: r.org,
    project: r.project,
    stack: r.stack,
    ...(r.last_update === null ? {} : { lastUpdate: r.last_update }),
    ...(r.resource_count === null ? {} : { resourceCount: r.resource_count }),
    ...(r.synced_last_update === null ? {} : { syncedLastUpdate: r.synced_last_update }),
    cursorVersion: r.cursor_version,
    firstSeenMs: r.first_seen_ms,
  };
}
