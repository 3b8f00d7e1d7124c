import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Prng } from './prng.js';
import type { PlannedResult, SimStack, SimUpdate, StackContext, ViolationRecord, WireEvent } from './sim-model.js';
import { updateMetadata } from './update-metadata.js';

export const FIXTURE_PROJECT = 'pulumi-samples';
export const FIXTURE_STACK = 'fixtures';

/**
 * The fixture stack: each non-preview file of fixtures/pulumi-samples becomes one history
 * update and each `*preview*` file one preview, serving the file's events unchanged except
 * for what the service itself does (no `sequence`, no trailing cancelEvent, a `type` key).
 */

function payloadKey(raw: Readonly<Record<string, unknown>>): string {
  const key = Object.keys(raw).find((k) => k !== 'sequence' && k !== 'timestamp' && k !== 'type');
  if (key === undefined) throw new Error('fixture event without a payload');
  return key;
}

/** One fixture line as `GET .../events` serves it. */
export function toServedEvent(raw: Readonly<Record<string, unknown>>): WireEvent {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw)) if (k !== 'sequence') out[k] = v;
  out['type'] = payloadKey(raw);
  return out as WireEvent;
}

function readLines(path: string): Record<string, unknown>[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim().length > 0)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

function payloadOf(e: WireEvent): Record<string, unknown> {
  const p = e[e.type];
  return typeof p === 'object' && p !== null ? (p as Record<string, unknown>) : {};
}

function resultOf(events: readonly WireEvent[]): PlannedResult {
  const summary = events.find((e) => e.type === 'summaryEvent');
  const reported = summary ? payloadOf(summary)['result'] : undefined;
  if (reported === 'canceled') return 'cancelled';
  if (reported === 'failed') return 'failed';
  if (reported === 'succeeded') return 'succeeded';
  // Older summaries have no result: a failed step or an error diagnostic means the update failed.
  const failed = events.some(
    (e) => e.type === 'resOpFailedEvent' || (e.type === 'diagnosticEvent' && payloadOf(e)['severity'] === 'error'),
  );
  return failed ? 'failed' : 'succeeded';
}

function kindOf(file: string): 'update' | 'refresh' | 'destroy' {
  if (file.includes('refresh')) return 'refresh';
  if (file.includes('destroy')) return 'destroy';
  return 'update';
}

/** Resources alive after the update: URNs whose last terminal event was not a delete. */
function resourceCountOf(events: readonly WireEvent[]): number {
  const alive = new Set<string>();
  for (const e of events) {
    if (e.type !== 'resOutputsEvent') continue;
    const meta = payloadOf(e)['metadata'] as Record<string, unknown> | undefined;
    const urn = meta?.['urn'];
    const op = meta?.['op'];
    if (typeof urn !== 'string') continue;
    if (op === 'delete') alive.delete(urn);
    else if (op !== 'delete-replaced') alive.add(urn);
  }
  return alive.size;
}

function changesOf(events: readonly WireEvent[]): Record<string, number> {
  const summary = events.find((e) => e.type === 'summaryEvent');
  const raw = summary ? payloadOf(summary)['resourceChanges'] : undefined;
  const out: Record<string, number> = {};
  if (typeof raw === 'object' && raw !== null) {
    for (const [k, v] of Object.entries(raw)) if (typeof v === 'number' && v !== 0) out[k] = v;
  }
  return out;
}

function violationsOf(events: readonly WireEvent[]): ViolationRecord[] {
  return events
    .filter((e) => e.type === 'policyEvent')
    .map((e) => {
      const p = payloadOf(e);
      return { policyPack: String(p['policyPackName'] ?? ''), policy: String(p['policyName'] ?? ''), enforcementLevel: String(p['enforcementLevel'] ?? '') };
    });
}

function durationOf(events: readonly WireEvent[]): number {
  const ts = events.map((e) => e.timestamp);
  const summary = events.find((e) => e.type === 'summaryEvent');
  const engine = summary ? Number(payloadOf(summary)['durationSeconds'] ?? 0) : 0;
  const span = ts.length > 0 ? Math.max(...ts) - Math.min(...ts) : 0;
  return Math.max(1, engine, span);
}

export interface FixtureStackInput {
  readonly org: string;
  readonly dir: string;
  readonly nowSeconds: number;
  readonly rng: Prng;
  readonly context: StackContext;
}

export function loadFixtureStack(input: FixtureStackInput): SimStack {
  const { rng, context } = input;
  const files = readdirSync(input.dir)
    .filter((f) => f.endsWith('.ndjson'))
    .sort();
  const historyFiles = files.filter((f) => !f.includes('preview'));
  const previewFiles = files.filter((f) => f.includes('preview'));
  const updates: SimUpdate[] = [];
  // Synthetic service times: the fixtures' own timestamps are years old (or 0), and the
  // history must look recent to pass an exporter's backfill window.
  let t = input.nowSeconds - 3 * 86_400 + rng.int(0, 3_600);
  const build = (file: string, version: number, preview: boolean): SimUpdate => {
    const events = readLines(join(input.dir, file))
      .filter((raw) => raw['cancelEvent'] === undefined)
      .map(toServedEvent);
    const kind = kindOf(file);
    const startTime = t;
    const endTime = startTime + durationOf(events) + rng.int(1, 3);
    t = endTime + rng.int(2 * 3_600, 6 * 3_600);
    const meta = updateMetadata(context, rng);
    return {
      updateId: rng.uuid(),
      kind: preview ? `P${kind}` : kind,
      isPreview: preview,
      version,
      startTime,
      endTime,
      result: resultOf(events),
      message: `Replay of fixture ${file}`,
      environment: meta.environment,
      config: context.config,
      requestedBy: meta.requestedBy,
      ...(meta.githubCommitInfo ? { githubCommitInfo: meta.githubCommitInfo } : {}),
      resourceChanges: changesOf(events),
      ...(preview ? {} : { resourceCount: resourceCountOf(events) }),
      events,
      operations: null,
      policyViolations: violationsOf(events),
      visible: events.length,
      complete: true,
    };
  };
  historyFiles.forEach((file, i) => updates.push(build(file, i + 1, false)));
  const previews = previewFiles.map((file) => build(file, historyFiles.length, true));
  return {
    org: input.org,
    project: FIXTURE_PROJECT,
    stack: FIXTURE_STACK,
    id: rng.uuid(),
    isFixture: true,
    context,
    tags: { 'pulumi:project': FIXTURE_PROJECT, 'pulumi:runtime': 'nodejs', 'pulumi:description': 'Pulumi engine-event samples' },
    updates,
    previews,
    program: [],
    state: { resources: new Map(), pendingDeletes: [] },
  };
}
