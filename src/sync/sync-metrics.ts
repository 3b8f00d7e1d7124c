import type { ErrorCode } from '../errors.js';

/** The self-metrics the sync and poll loops report (implemented by ExporterMetrics). */
export interface SyncMetrics {
  updateExported(kind: string, exportDelaySeconds: number): void;
  engineEvents(countsByType: Readonly<Record<string, number>>): void;
  error(code: ErrorCode): void;
  setBacklog(updates: number): void;
  setBackfillStacksPending(stacks: number): void;
  setStacksWatched(org: string, count: number): void;
  pollFinished(result: 'success' | 'failure', durationSeconds: number, nowMs: number): void;
}

export const noopSyncMetrics: SyncMetrics = {
  updateExported: () => undefined,
  engineEvents: () => undefined,
  error: () => undefined,
  setBacklog: () => undefined,
  setBackfillStacksPending: () => undefined,
  setStacksWatched: () => undefined,
  pollFinished: () => undefined,
};
