import type { CounterDelta, Exemplar, HistogramObservation, Labels } from '../domain/metric-delta.js';
import { labelsKey } from '../domain/metric-delta.js';
import type { StackRef } from '../domain/stack.js';
import { stackKey } from '../domain/stack.js';
import { ExporterError } from '../errors.js';
import { isPreviewKind } from '../domain/update.js';
import type { ExportedUpdate, PreviewCursor, UpdateCommit } from './state-store.js';

// Rules every StateStore implementation applies the same way, so stores cannot drift apart
// on what they accept or how they bucket.

function invalid(message: string, details: Record<string, string | number> = {}): ExporterError {
  return new ExporterError('STATE_ERROR', message, { details });
}

/** Throws STATE_ERROR for a commit whose update facts could not be stored meaningfully. */
export function checkCommit(commit: UpdateCommit): void {
  const u = commit.update;
  if (u.updateId.length === 0) throw invalid(`update of ${stackKey(u.stack)} has an empty update id`);
  if (!Number.isSafeInteger(u.version) || u.version < 0) {
    throw invalid(`update ${u.updateId} of ${stackKey(u.stack)} has an invalid version ${u.version}`);
  }
  for (const [field, value] of [
    ['startTime', u.startTime],
    ['endTime', u.endTime],
    ['exportedAtMs', commit.exportedAtMs],
  ] as const) {
    if (!Number.isFinite(value)) throw invalid(`update ${u.updateId}: ${field} is not a finite number`);
  }
}

/** A stack cursor is a stack version: a safe integer >= 0. */
export function checkCursorVersion(stack: StackRef, version: number): void {
  if (!Number.isSafeInteger(version) || version < 0) {
    throw invalid(`cursor of ${stackKey(stack)} cannot move to invalid version ${version}`);
  }
}

/** A preview cursor is a stack version and a Unix second, both safe integers >= 0. */
export function checkPreviewCursor(stack: StackRef, cursor: PreviewCursor): void {
  if (!Number.isSafeInteger(cursor.version) || cursor.version < 0 || !Number.isSafeInteger(cursor.startTime) || cursor.startTime < 0) {
    throw invalid(`preview cursor of ${stackKey(stack)} cannot move to invalid position ${JSON.stringify(cursor)}`);
  }
}

/** Counters only go up: a negative or non-finite increment is refused. */
export function checkCounterDelta(delta: CounterDelta): void {
  if (!Number.isFinite(delta.value) || delta.value < 0) {
    throw invalid(`counter ${delta.name} cannot be incremented by ${delta.value}: increments must be finite and >= 0`, {
      metric: delta.name,
    });
  }
}

export function checkObservation(obs: HistogramObservation): void {
  if (!Number.isFinite(obs.value)) {
    throw invalid(`histogram ${obs.name} cannot observe ${obs.value}`, { metric: obs.name });
  }
  for (let i = 0; i < obs.buckets.length; i++) {
    const bound = obs.buckets[i] as number;
    if (!Number.isFinite(bound) || (i > 0 && bound <= (obs.buckets[i - 1] as number))) {
      throw invalid(`histogram ${obs.name} has bucket bounds that are not finite and strictly ascending`, {
        metric: obs.name,
      });
    }
  }
}

/** Index of the non-cumulative bucket that counts `value`: the first bound >= value, else +Inf. */
export function bucketIndex(buckets: readonly number[], value: number): number {
  const i = buckets.findIndex((bound) => value <= bound);
  return i === -1 ? buckets.length : i;
}

export function sameBuckets(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((bound, i) => bound === b[i]);
}

/**
 * A histogram series keeps the bounds it was created with. Folding an observation into
 * other bounds would silently misplace it (and Prometheus treats a bucket change as a
 * different distribution), so the commit is refused; a bucket change needs a new metric.
 */
export function bucketMismatch(obs: HistogramObservation, stored: readonly number[]): ExporterError {
  return invalid(
    `histogram ${obs.name}${labelsKey(obs.labels)} was created with buckets [${stored.join(', ')}] ` +
      `but this observation uses [${obs.buckets.join(', ')}]; bucket bounds of a stored histogram cannot change`,
    { metric: obs.name },
  );
}

/** The label set with keys sorted, so stored JSON is canonical. */
export function canonicalLabels(labels: Labels): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of Object.keys(labels).sort()) out[k] = labels[k] as string;
  return out;
}

export function checkSameStack(expected: StackRef, actual: StackRef, what: string): void {
  if (expected.org !== actual.org || expected.project !== actual.project || expected.stack !== actual.stack) {
    throw invalid(`${what} belongs to ${stackKey(actual)}, not ${stackKey(expected)}`);
  }
}

export function checkOrg(org: string, stack: StackRef): void {
  if (stack.org !== org) {
    throw invalid(`stack ${stackKey(stack)} is listed for org ${org} but belongs to org ${stack.org}`);
  }
}

/** The stored exemplar list of a histogram row (JSON: one entry or null per bucket slot). */
export function parseExemplars(json: string): (Exemplar | null)[] {
  const value: unknown = JSON.parse(json);
  if (!Array.isArray(value)) {
    throw new ExporterError('STATE_ERROR', `state database holds a malformed exemplar list: ${json.slice(0, 80)}`);
  }
  return value as (Exemplar | null)[];
}

/** What updates committed together change of one stack's row and facts. */
export interface StackCommitFacts {
  readonly stack: StackRef;
  /** The highest version among them that is not a preview's (a preview never moves the cursor); 0 when all are previews. */
  readonly cursorVersion: number;
  /** exportedAtMs of the stack's first commit: its first-seen time when the store does not know the stack yet. */
  readonly firstSeenMs: number;
  /** Per kind, the update with the newest end time (the later one on a tie), as one commit after another leaves it. */
  readonly lastUpdates: readonly ExportedUpdate[];
  /** End time of the newest succeeded update that is not a preview; undefined when there is none. */
  readonly lastSuccessEndTime?: number;
  readonly updateIds: readonly string[];
}

/**
 * The per-stack writes of several commits (in order), so a store writes each stack's cursor,
 * last-update facts and in-progress/follow deletions once per transaction, with the result
 * of committing them one after another.
 */
export function stackCommitFacts(commits: readonly UpdateCommit[]): StackCommitFacts[] {
  const stacks = new Map<string, { stack: StackRef; cursorVersion: number; firstSeenMs: number; last: Map<string, ExportedUpdate>; success?: number; ids: string[] }>();
  for (const { update: u, exportedAtMs } of commits) {
    const key = stackKey(u.stack);
    let facts = stacks.get(key);
    if (facts === undefined) {
      facts = { stack: u.stack, cursorVersion: 0, firstSeenMs: exportedAtMs, last: new Map(), ids: [] };
      stacks.set(key, facts);
    }
    const preview = isPreviewKind(u.kind);
    if (!preview) facts.cursorVersion = Math.max(facts.cursorVersion, u.version);
    const last = facts.last.get(u.kind);
    if (last === undefined || u.endTime >= last.endTime) facts.last.set(u.kind, u);
    if (u.result === 'succeeded' && !preview && (facts.success === undefined || u.endTime >= facts.success)) facts.success = u.endTime;
    facts.ids.push(u.updateId);
  }
  return [...stacks.values()].map((f) => ({
    stack: f.stack,
    cursorVersion: f.cursorVersion,
    firstSeenMs: f.firstSeenMs,
    lastUpdates: [...f.last.values()],
    ...(f.success === undefined ? {} : { lastSuccessEndTime: f.success }),
    updateIds: f.ids,
  }));
}
