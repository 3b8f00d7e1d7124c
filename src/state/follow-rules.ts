import { stackKey } from '../domain/stack.js';
import { ExporterError } from '../errors.js';
import type { FollowRecord } from './state-store.js';

/** Refuses a follow record no sync could have produced, before anything is written. */
export function checkFollowRecord(record: FollowRecord): void {
  const where = `follow record of update ${record.updateId} of ${stackKey(record.stack)}`;
  if (!Number.isSafeInteger(record.eventsRead) || record.eventsRead < 0) {
    throw new ExporterError('STATE_ERROR', `${where}: events read must be an integer >= 0, got ${String(record.eventsRead)}`);
  }
  if (!record.sentSpanIds.every((id) => typeof id === 'string' && /^[0-9a-f]{16}$/.test(id))) {
    throw new ExporterError('STATE_ERROR', `${where}: sent span ids must be 16 lowercase hex characters`);
  }
}

/** The stored sent span ids with the new ones added: a sorted set that never shrinks. */
export function mergeSpanIds(stored: readonly string[], added: readonly string[]): string[] {
  return [...new Set([...stored, ...added])].sort();
}
