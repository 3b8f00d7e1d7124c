import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convertUpdate, type ConversionOptions } from '../../../src/conversion/convert-update.js';
import { stepSpanIdFor } from '../../../src/conversion/trace-ids.js';
import type { EngineEvent } from '../../../src/domain/engine-event.js';
import type { UpdateInfo } from '../../../src/domain/update.js';
import { parseEngineEvent } from '../../../src/pulumi/wire-events.js';
import { clearSecretsForTests, redact, registerSecret } from '../../../src/secrets.js';

/*
 * Property tests over generated, plausible engine-event streams: a stack with components
 * and custom resources, single steps, create-before-delete and delete-before-replace
 * chains on one URN, refresh steps, failures (error diagnostic + resOpFailedEvent),
 * interrupted steps, components' extra outputs events, diagnostics, policy events and
 * unknown payloads, interleaved in random order, with coarse, zero or out-of-window
 * timestamps. Streams are built as raw wire objects carrying marker strings in every
 * field that must never be exported, then parsed with the real wire parser.
 */

const T0 = 1_700_000_000;
const TOKEN = 'pul-0123456789abcdef0123456789abcdef01234567';
const MARKERS = [
  'INPUT_MARKER',
  'OUTPUT_MARKER',
  'CONFIG_MARKER',
  'DETAILED_DIFF_VALUE_MARKER',
  'REMEDIATION_MARKER',
  'UNKNOWN_PAYLOAD_MARKER',
  'STDOUT_MARKER',
  'EMAIL_MARKER',
  TOKEN,
];

const CUSTOM_TYPES = ['aws:s3/bucket:Bucket', 'aws:iam/role:Role', 'random:index/randomId:RandomId'];
const COMPONENT_TYPES = ['acme:index:Web', 'acme:index:Net'];
const SINGLE_OPS = ['same', 'same', 'same', 'create', 'update', 'delete', 'read', 'import'];

type Outcome = 'ok' | 'failed' | 'open';
type Scenario = 'single' | 'cbd' | 'dbr' | 'refresh';

interface ResourceArb {
  readonly component: boolean;
  readonly typeIndex: number;
  readonly parentPick: number;
  readonly scenario: Scenario;
  readonly op: number;
  readonly outcomes: readonly Outcome[];
  readonly refreshResults: readonly number[];
  readonly start: number;
  readonly gaps: readonly number[];
  readonly extraOutputs: boolean;
  readonly warn: boolean;
  readonly violation: boolean;
}

const outcomeArb = fc.constantFrom<Outcome>('ok', 'ok', 'ok', 'ok', 'failed', 'open');

const resourceArb: fc.Arbitrary<ResourceArb> = fc.record({
  component: fc.boolean(),
  typeIndex: fc.nat(),
  parentPick: fc.nat(),
  scenario: fc.constantFrom<Scenario>('single', 'single', 'single', 'cbd', 'dbr', 'refresh'),
  op: fc.nat(),
  outcomes: fc.array(outcomeArb, { minLength: 3, maxLength: 3 }),
  refreshResults: fc.array(fc.nat(2), { minLength: 2, maxLength: 2 }),
  start: fc.nat(400),
  gaps: fc.array(fc.nat(30), { minLength: 6, maxLength: 6 }),
  extraOutputs: fc.boolean(),
  warn: fc.boolean(),
  violation: fc.boolean(),
});

const streamArb = fc.record({
  resources: fc.array(resourceArb, { minLength: 0, maxLength: 25 }),
  zeroTimestamps: fc.boolean(),
  preview: fc.boolean(),
  windowStart: fc.integer({ min: -5, max: 20 }),
  windowLength: fc.nat(120),
  inProgress: fc.boolean(),
  unknownEvents: fc.nat(3),
});

type Stream = fc.Arbitrary<typeof streamArb extends fc.Arbitrary<infer S> ? S : never>;
type StreamValue = Stream extends fc.Arbitrary<infer S> ? S : never;

interface Item {
  readonly key: number;
  readonly seq: number;
  readonly raw: Record<string, unknown>;
}

function urnOf(name: string, typeChain: string): string {
  return `urn:pulumi:dev::proj::${typeChain}::${name}`;
}

function state(urn: string, type: string, custom: boolean, parent: string): Record<string, unknown> {
  return {
    type,
    urn,
    custom,
    id: custom ? 'id-1234' : '',
    parent,
    provider: custom ? 'urn:pulumi:dev::proj::pulumi:providers:aws::default::prov-1' : '',
    inputs: { password: 'INPUT_MARKER', nested: { deep: 'INPUT_MARKER' } },
    outputs: { arn: 'OUTPUT_MARKER' },
  };
}

/** Builds a raw wire stream (as GET .../events would serve it) from a generated program. */
function buildStream(v: StreamValue): Record<string, unknown>[] {
  const items: Item[] = [];
  let seq = 0;
  const ts = (key: number): number => (v.zeroTimestamps ? 0 : T0 + Math.floor(key / 10));
  const push = (key: number, payloadKey: string, payload: unknown): void => {
    items.push({ key, seq: seq++, raw: { timestamp: ts(key), type: payloadKey, [payloadKey]: payload } });
  };

  const stackUrn = urnOf('proj-dev', 'pulumi:pulumi:Stack');
  const resources: { urn: string; component: boolean; chain: string }[] = [{ urn: stackUrn, component: true, chain: '' }];
  push(0, 'preludeEvent', { config: { 'aws:region': 'CONFIG_MARKER' } });
  push(1, 'resourcePreEvent', { metadata: step('same', stackUrn, 'pulumi:pulumi:Stack', false, ''), planning: v.preview });
  push(2, 'resOutputsEvent', { metadata: step('same', stackUrn, 'pulumi:pulumi:Stack', false, ''), planning: v.preview });

  v.resources.forEach((r, i) => {
    const parent = resources[r.parentPick % resources.length]!;
    const parentUrn = parent.component ? parent.urn : stackUrn;
    const parentChain = parent.component && parent.urn !== stackUrn ? parent.chain : '';
    const type = r.component ? COMPONENT_TYPES[r.typeIndex % COMPONENT_TYPES.length]! : CUSTOM_TYPES[r.typeIndex % CUSTOM_TYPES.length]!;
    const chain = parentChain ? `${parentChain}$${type}` : type;
    const urn = urnOf(`r${i}`, chain);
    resources.push({ urn, component: r.component, chain });

    const ops =
      r.scenario === 'cbd'
        ? ['create-replacement', 'replace', 'delete-replaced']
        : r.scenario === 'dbr'
          ? ['delete-replaced', 'replace', 'create-replacement']
          : r.scenario === 'refresh'
            ? ['refresh', 'refresh']
            : [SINGLE_OPS[r.op % SINGLE_OPS.length]!];
    let cursor = 10 + r.start;
    ops.forEach((op, k) => {
      const outcome = r.outcomes[k] ?? 'ok';
      const custom = !r.component;
      const meta = step(op, urn, type, custom, parentUrn);
      push(cursor, 'resourcePreEvent', { metadata: meta, planning: v.preview });
      const end = cursor + (r.gaps[k] ?? 0);
      if (r.warn) {
        push(end, 'diagnosticEvent', {
          urn,
          message: `<{%fg 3%}>warning: ${TOKEN} leaked into output<{%reset%}>\n`,
          color: 'raw',
          severity: 'warning',
        });
      }
      if (outcome === 'failed') {
        push(end, 'diagnosticEvent', { urn, message: `<{%fg 1%}>error: ${op} failed hard<{%reset%}>\n`, color: 'raw', severity: 'error' });
        if (!v.preview) push(end, 'resOpFailedEvent', { metadata: meta, status: k % 3, steps: k });
      } else if (outcome === 'ok') {
        const resultOp = op === 'refresh' ? (['same', 'update', 'delete'][r.refreshResults[k] ?? 0] ?? 'same') : op;
        push(end, 'resOutputsEvent', { metadata: step(resultOp, urn, type, custom, parentUrn), planning: v.preview });
      }
      cursor = end + 1 + (r.gaps[k + 3] ?? 0);
    });
    if (r.extraOutputs && r.component) {
      push(cursor + 5, 'resOutputsEvent', { metadata: step('same', urn, type, false, parentUrn), planning: v.preview });
    }
    if (r.violation) {
      push(cursor, 'policyEvent', {
        resourceUrn: urn,
        message: 'must have tags',
        color: 'raw',
        policyName: `policy-${i % 3}`,
        policyPackName: 'pack',
        policyPackVersion: '1',
        policyPackVersionTag: '1',
        enforcementLevel: i % 2 === 0 ? 'advisory' : 'mandatory',
      });
      push(cursor, 'policyRemediationEvent', {
        resourceUrn: urn,
        color: 'raw',
        policyName: 'fixer',
        policyPackName: 'pack',
        policyPackVersion: '1',
        policyPackVersionTag: '1',
        before: { x: 'REMEDIATION_MARKER' },
        after: { x: 'REMEDIATION_MARKER' },
      });
    }
  });
  for (let u = 0; u < v.unknownEvents; u++) push(50 * u, 'fancyNewEvent', { payload: 'UNKNOWN_PAYLOAD_MARKER' });
  push(3, 'stdoutEvent', { message: 'STDOUT_MARKER', color: 'raw' });
  const last = items.reduce((m, it) => Math.max(m, it.key), 0);
  push(last + 1, 'summaryEvent', { maybeCorrupt: false, durationSeconds: 3, resourceChanges: { same: 1 }, PolicyPacks: {} });
  items.sort((a, b) => a.key - b.key || a.seq - b.seq);
  return items.map((it) => it.raw);
}

function step(op: string, urn: string, type: string, custom: boolean, parent: string): Record<string, unknown> {
  const s = state(urn, type, custom, parent);
  const gone = op === 'delete' || op === 'delete-replaced';
  return {
    op,
    urn,
    type,
    old: op === 'create' ? null : s,
    new: gone ? null : s,
    keys: op.includes('replace') ? ['name'] : undefined,
    diffs: op === 'update' || op.includes('replace') ? ['name', 'name'] : undefined,
    detailedDiff: op === 'update' ? { name: { diffKind: 'update', inputDiff: true, value: 'DETAILED_DIFF_VALUE_MARKER' } } : null,
    logical: op !== 'create-replacement' && op !== 'delete-replaced' && op !== 'refresh',
    provider: custom ? 'urn:pulumi:dev::proj::pulumi:providers:aws::default::prov-1' : '',
  };
}

function parseAll(raw: readonly Record<string, unknown>[]): EngineEvent[] {
  return raw.map((r) => {
    const p = parseEngineEvent(r);
    if (!p.ok) throw new Error(p.problem);
    return p.event;
  });
}

function updateFor(v: StreamValue): UpdateInfo {
  const startTime = T0 + v.windowStart;
  return {
    stack: { org: 'acme', project: 'proj', stack: 'dev' },
    updateId: 'prop-update',
    kind: v.preview ? 'preview' : 'update',
    version: 3,
    result: v.inProgress ? 'in-progress' : 'succeeded',
    startTime,
    ...(v.inProgress ? {} : { endTime: startTime + v.windowLength }),
    message: 'property run',
    environment: { 'git.committer.email': 'EMAIL_MARKER@example.com', 'git.author': 'EMAIL_MARKER', 'git.head': 'abc' },
    resourceChanges: {},
  };
}

const BASE: ConversionOptions = {
  // As the app wires it: the process-wide secret registry.
  redact,
  serviceName: 'pulumi',
  keepSameSteps: true,
  maxSpansPerTrace: 100_000,
  maxAttributeLength: 512,
  consoleUrl: 'https://app.pulumi.com',
};

describe('convertUpdate over generated event streams', () => {
  beforeAll(() => registerSecret(TOKEN));
  afterAll(() => clearSecretsForTests());

  it('yields one operation and, keeping same steps, one span with the documented id per resourcePreEvent', () => {
    fc.assert(
      fc.property(streamArb, (v) => {
        const events = parseAll(buildStream(v));
        const r = convertUpdate(updateFor(v), events, BASE);
        const pres = events.flatMap((e, i) => (e.type === 'resourcePreEvent' ? [{ e, i }] : []));
        expect(r.operations).toHaveLength(pres.length);
        expect(r.trace.spans).toHaveLength(pres.length + 1);
        expect(r.trace.spans.slice(1).map((s) => s.spanId)).toEqual(
          pres.map(({ e, i }) => stepSpanIdFor(r.trace.traceId, e.metadata.urn, e.metadata.op, i)),
        );
        r.operations.forEach((op, k) => {
          const span = r.trace.spans[k + 1]!;
          expect(op.urn).toBe(pres[k]!.e.metadata.urn);
          expect(span.attributes['pulumi.resource.interrupted'] === true).toBe(op.result === 'interrupted');
          expect(span.status.code === 'error').toBe(op.result === 'failed');
        });
        expect(Object.values(r.eventCounts).reduce((a, b) => a + b, 0)).toBe(events.length);
      }),
      { numRuns: 150 },
    );
  });

  it('produces a well-formed tree: unique ids, existing parents, every span inside the window and ending after it starts', () => {
    fc.assert(
      fc.property(streamArb, fc.boolean(), (v, keepSameSteps) => {
        const r = convertUpdate(updateFor(v), parseAll(buildStream(v)), { ...BASE, keepSameSteps });
        const [root, ...steps] = r.trace.spans;
        expect(root?.parentSpanId).toBeUndefined();
        const ids = new Set(r.trace.spans.map((s) => s.spanId));
        expect(ids.size).toBe(r.trace.spans.length);
        for (const s of r.trace.spans) {
          expect(s.traceId).toBe(r.trace.traceId);
          expect(s.spanId).toMatch(/^[0-9a-f]{16}$/);
          expect(s.endTimeMs).toBeGreaterThanOrEqual(s.startTimeMs);
          expect(s.startTimeMs).toBeGreaterThanOrEqual(root!.startTimeMs);
          expect(s.endTimeMs).toBeLessThanOrEqual(root!.endTimeMs);
          for (const e of s.events) {
            expect(e.timeMs).toBeGreaterThanOrEqual(s.startTimeMs);
            expect(e.timeMs).toBeLessThanOrEqual(s.endTimeMs);
          }
        }
        for (const s of steps) expect(ids.has(s.parentSpanId ?? '')).toBe(true);
        // Without keepSameSteps a same span survives only as someone's parent.
        if (!keepSameSteps) {
          const parents = new Set(steps.map((s) => s.parentSpanId));
          for (const s of steps) {
            if (s.attributes['pulumi.resource.operation'] === 'same') expect(parents.has(s.spanId)).toBe(true);
          }
        }
      }),
      { numRuns: 150 },
    );
  });

  it('is deterministic: the same events give identical traces, ids included', () => {
    fc.assert(
      fc.property(streamArb, (v) => {
        const raw = buildStream(v);
        const a = convertUpdate(updateFor(v), parseAll(raw), BASE);
        const b = convertUpdate(updateFor(v), parseAll(JSON.parse(JSON.stringify(raw)) as Record<string, unknown>[]), BASE);
        expect(b).toEqual(a);
      }),
      { numRuns: 50 },
    );
  });

  it('never exports inputs, outputs, config, detailed-diff values, unknown payloads, e-mails or registered secrets', () => {
    fc.assert(
      fc.property(streamArb, (v) => {
        const raw = buildStream(v);
        const json = JSON.stringify(convertUpdate(updateFor(v), parseAll(raw), BASE));
        for (const m of MARKERS) expect(json).not.toContain(m);
      }),
      { numRuns: 100 },
    );
  });

  it('marks as final only step spans that the finished trace holds unchanged, and keeps them final as events arrive', () => {
    fc.assert(
      fc.property(streamArb, fc.integer({ min: 1, max: 40 }), fc.boolean(), (v, cap, keepSameSteps) => {
        const options = { ...BASE, keepSameSteps, maxSpansPerTrace: cap };
        const events = parseAll(buildStream(v));
        // The service's end time after every event (the CLI and the service agree on the clock).
        const finished: UpdateInfo = { ...updateFor(v), result: 'succeeded', endTime: T0 + 10_000 };
        const running: UpdateInfo = { ...finished, result: 'in-progress' };
        delete (running as { endTime?: number }).endTime;
        const final = convertUpdate(finished, events, options);
        const byId = new Map(final.trace.spans.map((s) => [s.spanId, s]));
        let before = new Set<string>();
        for (let k = 0; k <= events.length; k++) {
          const partial = convertUpdate(running, events.slice(0, k), options);
          const spans = new Map(partial.trace.spans.map((s) => [s.spanId, s]));
          for (const id of partial.finalSpanIds) {
            expect(spans.get(id)).toEqual(byId.get(id));
            expect(id).not.toBe(partial.trace.spans[0]?.spanId);
          }
          for (const id of before) expect(partial.finalSpanIds.has(id)).toBe(true);
          before = new Set(partial.finalSpanIds);
        }
      }),
      { numRuns: 60 },
    );
  });

  it('respects the span cap and reports exactly how many spans it dropped', () => {
    fc.assert(
      fc.property(streamArb, fc.integer({ min: 1, max: 12 }), fc.boolean(), (v, cap, keepSameSteps) => {
        const events = parseAll(buildStream(v));
        const full = convertUpdate(updateFor(v), events, { ...BASE, keepSameSteps });
        const cut = convertUpdate(updateFor(v), events, { ...BASE, keepSameSteps, maxSpansPerTrace: cap });
        expect(cut.trace.spans.length).toBeLessThanOrEqual(cap);
        expect(cut.trace.spans.length + cut.trace.droppedSpans).toBe(full.trace.spans.length);
        expect(cut.trace.spans.map((s) => s.spanId)).toEqual(full.trace.spans.slice(0, cut.trace.spans.length).map((s) => s.spanId));
        expect(cut.trace.spans[0]?.attributes['pulumi.trace.dropped_spans']).toBe(
          cut.trace.droppedSpans > 0 ? cut.trace.droppedSpans : undefined,
        );
        const ids = new Set(cut.trace.spans.map((s) => s.spanId));
        for (const s of cut.trace.spans.slice(1)) expect(ids.has(s.parentSpanId ?? '')).toBe(true);
        expect(cut.operations).toEqual(full.operations);
      }),
      { numRuns: 100 },
    );
  });
});
