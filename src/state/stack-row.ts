import type { ExportedUpdate, InProgressRecord, LastSuccessRow, LastUpdateRow, StackRecord } from './state-store.js';

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
  /** Both NULL until previews were first listed (schema version 5). */
  preview_cursor_version: number | null;
  preview_cursor_start: number | null;
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
    ...(r.preview_cursor_version === null || r.preview_cursor_start === null
      ? {}
      : { previewCursor: { version: r.preview_cursor_version, startTime: r.preview_cursor_start } }),
    firstSeenMs: r.first_seen_ms,
  };
}

/** An `in_progress` row as both SQL stores hold it. */
export interface InProgressRow {
  org: string;
  project: string;
  stack: string;
  update_id: string;
  kind: string;
  version: number;
  start_time: number;
}

/** The in-progress set of every stack, ordered as listInProgress returns it. */
export const IN_PROGRESS_SQL = 'SELECT org, project, stack, update_id, kind, version, start_time FROM in_progress ORDER BY org, project, stack, version, update_id';

export function toInProgressRecord(r: InProgressRow): InProgressRecord {
  return {
    stack: { org: r.org, project: r.project, stack: r.stack },
    updateId: r.update_id,
    kind: r.kind,
    version: r.version,
    startTime: r.start_time,
  };
}

/** The columns of a stack's running set that a scrape shows, one per update id, ordered by it. */
export type RunningSetRow = Pick<InProgressRow, 'update_id' | 'kind' | 'version' | 'start_time'>;

/** A stack's running set as setInProgress would store it, to compare with what is stored. */
export function runningSetRows(updates: readonly InProgressRecord[]): RunningSetRow[] {
  return [...new Map(updates.map((u) => [u.updateId, u])).values()]
    .sort((a, b) => (a.updateId < b.updateId ? -1 : a.updateId > b.updateId ? 1 : 0))
    .map((u) => ({ update_id: u.updateId, kind: u.kind, version: u.version, start_time: u.startTime }));
}

/** Selects a stack's stored running set (org, project, stack as parameters), in runningSetRows' order. */
export const RUNNING_SET_SQL = (param: (n: number) => string): string =>
  `SELECT update_id, kind, version, start_time FROM in_progress WHERE org = ${param(1)} AND project = ${param(2)} AND stack = ${param(3)} ORDER BY update_id`;

/** An `exported_updates` row as both SQL stores return it for listRecentUpdates. */
export interface ExportedUpdateRow extends InProgressRow {
  result: string;
  end_time: number;
}

/** Columns of ExportedUpdateRow, newest end time first, as listRecentUpdates orders them. */
export const RECENT_UPDATES_SQL = `SELECT org, project, stack, update_id, kind, version, result, start_time, end_time
  FROM exported_updates ORDER BY end_time DESC, version DESC, org, project, stack`;

export function toExportedUpdate(r: ExportedUpdateRow): ExportedUpdate {
  return { ...toInProgressRecord(r), result: r.result, endTime: r.end_time };
}

/** A last_updates row as both SQL stores read it. */
export interface LastUpdateDbRow {
  org: string;
  project: string;
  stack: string;
  kind: string;
  result: string;
  end_time: number;
  duration_seconds: number | null;
}

export function toLastUpdateRow(r: LastUpdateDbRow): LastUpdateRow {
  return {
    stack: { org: r.org, project: r.project, stack: r.stack },
    kind: r.kind,
    result: r.result,
    endTime: r.end_time,
    ...(r.duration_seconds === null ? {} : { durationSeconds: r.duration_seconds }),
  };
}

/** A last_success row as both SQL stores read it. */
export interface LastSuccessDbRow {
  org: string;
  project: string;
  stack: string;
  end_time: number;
}

export function toLastSuccessRow(r: LastSuccessDbRow): LastSuccessRow {
  return { stack: { org: r.org, project: r.project, stack: r.stack }, endTime: r.end_time };
}
