import { convertUpdate, type ConversionOptions } from '../src/conversion/convert-update.js';
import type { EngineEvent } from '../src/domain/engine-event.js';
import type { UpdateInfo } from '../src/domain/update.js';
import { parseEngineEvent } from '../src/pulumi/wire-events.js';
import { loadFixtureRaw } from '../test/helpers/fixtures.js';
import type { BenchCase, BenchGroup, BenchSuite } from './run.js';

/*
 * Conversion throughput against the cost of merely reading the same events: JSON.parse of
 * the events as API pages, the wire -> domain parser, and convertUpdate, on (1) the real
 * nested-components preview replicated to ~50k events with unique URNs per copy and (2) a
 * generated large update (components, replacements, failures, interrupted steps,
 * diagnostics) with realistically sized inputs/outputs.
 */

const PAGE_SIZE = 500;
const TARGET_EVENTS = 50_000;

const OPTIONS: ConversionOptions = {
  serviceName: 'pulumi',
  keepSameSteps: false,
  maxSpansPerTrace: 1_000_000,
  maxAttributeLength: 1024,
  consoleUrl: 'https://app.pulumi.com',
};

type Raw = Record<string, unknown>;

function withSuffix(value: unknown, suffix: string): unknown {
  if (typeof value === 'string') return value.startsWith('urn:pulumi:') ? `${value}${suffix}` : value;
  if (Array.isArray(value)) return value.map((v) => withSuffix(v, suffix));
  if (value !== null && typeof value === 'object') {
    const out: Raw = {};
    for (const [k, v] of Object.entries(value)) out[k] = withSuffix(v, suffix);
    return out;
  }
  return value;
}

/** The fixture as API events (no sequence, no cancelEvent, with `type`), copied until ~50k events. */
function replicatedFixture(name: string): Raw[] {
  const base = loadFixtureRaw(name)
    .filter((e) => e['cancelEvent'] === undefined)
    .map((e) => {
      const { sequence: _sequence, ...rest } = e;
      const key = Object.keys(rest).find((k) => k.endsWith('Event'))!;
      return { ...rest, type: key };
    });
  const copies = Math.ceil(TARGET_EVENTS / base.length);
  const out: Raw[] = [];
  for (let c = 0; c < copies; c++) {
    for (const e of base) out.push(c === 0 ? e : (withSuffix(e, `-copy${c}`) as Raw));
  }
  return out;
}

function mulberry32(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const T0 = 1_717_000_000;

/** A large `pulumi up`: 2 component levels, ~22k resources, mostly same steps, as API events. */
function generatedUpdate(resources: number): Raw[] {
  const rand = mulberry32(42);
  const events: Raw[] = [];
  const push = (t: number, key: string, payload: unknown): void => {
    events.push({ timestamp: t, type: key, [key]: payload });
  };
  const props = (prefix: string): Raw => {
    const o: Raw = {};
    for (let i = 0; i < 10; i++) o[`${prefix}Property${i}`] = `value-${Math.floor(rand() * 1e9).toString(36)}-${'x'.repeat(24)}`;
    return o;
  };
  const state = (urn: string, type: string, custom: boolean, parent: string): Raw => ({
    type,
    urn,
    custom,
    id: custom ? `id-${Math.floor(rand() * 1e12).toString(36)}` : '',
    parent,
    provider: custom ? 'urn:pulumi:prod::big::pulumi:providers:aws::default_6_0_0::4f5c0a1e-1111-2222-3333-444455556666' : '',
    inputs: props('input'),
    outputs: props('output'),
  });
  const meta = (op: string, urn: string, type: string, custom: boolean, parent: string): Raw => ({
    op,
    urn,
    type,
    old: op === 'create' ? null : state(urn, type, custom, parent),
    new: op === 'delete' ? null : state(urn, type, custom, parent),
    diffs: op === 'update' ? ['tags', 'name'] : undefined,
    detailedDiff: op === 'update' ? { tags: { diffKind: 'update', inputDiff: true } } : null,
    logical: true,
    provider: custom ? 'urn:pulumi:prod::big::pulumi:providers:aws::default_6_0_0::4f5c0a1e-1111-2222-3333-444455556666' : '',
  });

  let t = T0;
  const stack = 'urn:pulumi:prod::big::pulumi:pulumi:Stack::big-prod';
  push(t, 'preludeEvent', { config: { 'aws:region': 'eu-west-1' } });
  push(t, 'resourcePreEvent', { metadata: meta('same', stack, 'pulumi:pulumi:Stack', false, '') });
  const open: (() => void)[] = [];
  let component = stack;
  let componentChain = '';
  for (let i = 0; i < resources; i++) {
    if (rand() < 0.2) t += 1;
    if (i % 25 === 0) {
      const type = i % 100 === 0 ? 'acme:index:Service' : 'acme:index:Module';
      const parent = i % 100 === 0 ? stack : component;
      componentChain = i % 100 === 0 ? type : `${componentChain.split('$')[0]}$${type}`;
      component = `urn:pulumi:prod::big::${componentChain}::c${i}`;
      const m = meta('same', component, type, false, parent);
      push(t, 'resourcePreEvent', { metadata: m });
      const at = t;
      open.push(() => push(at + 5, 'resOutputsEvent', { metadata: m }));
      continue;
    }
    const type = ['aws:s3/bucket:Bucket', 'aws:iam/role:Role', 'aws:lambda/function:Function'][i % 3]!;
    const urn = `urn:pulumi:prod::big::${componentChain}$${type}::r${i}`;
    const roll = rand();
    if (roll < 0.04) {
      for (const op of ['create-replacement', 'replace']) {
        push(t, 'resourcePreEvent', { metadata: meta(op, urn, type, true, component) });
        push(t + 2, 'resOutputsEvent', { metadata: meta(op, urn, type, true, component) });
      }
      const del = meta('delete-replaced', urn, type, true, component);
      const at = t;
      open.push(() => {
        push(at + 30, 'resourcePreEvent', { metadata: del });
        push(at + 31, 'resOutputsEvent', { metadata: del });
      });
      continue;
    }
    const op = roll < 0.7 ? 'same' : roll < 0.88 ? 'update' : 'create';
    const m = meta(op, urn, type, true, component);
    push(t, 'resourcePreEvent', { metadata: m });
    if (roll > 0.995) continue; // interrupted
    if (roll > 0.98) {
      push(t + 3, 'diagnosticEvent', { urn, message: '<{%fg 1%}>error: creating: AccessDenied<{%reset%}>\n', color: 'raw', severity: 'error' });
      push(t + 3, 'resOpFailedEvent', { metadata: m, status: 0, steps: i });
      continue;
    }
    if (roll > 0.95) push(t + 1, 'diagnosticEvent', { urn, message: 'warning: deprecated argument', color: 'raw', severity: 'warning' });
    push(t + (op === 'same' ? 0 : Math.floor(rand() * 20)), 'resOutputsEvent', { metadata: m });
  }
  for (const close of open) close();
  push(t + 40, 'resOutputsEvent', { metadata: meta('same', stack, 'pulumi:pulumi:Stack', false, '') });
  push(t + 40, 'summaryEvent', { maybeCorrupt: false, durationSeconds: t + 40 - T0, resourceChanges: { same: 1 }, PolicyPacks: {} });
  return events;
}

function pages(events: readonly Raw[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < events.length; i += PAGE_SIZE) {
    const last = i + PAGE_SIZE >= events.length;
    out.push(JSON.stringify({ events: events.slice(i, i + PAGE_SIZE), continuationToken: last ? null : `tok-${i}` }));
  }
  return out;
}

function parsePages(texts: readonly string[]): Raw[] {
  const all: Raw[] = [];
  for (const text of texts) {
    const page = JSON.parse(text) as { events: Raw[] };
    for (const e of page.events) all.push(e);
  }
  return all;
}

function toDomain(raw: readonly Raw[]): EngineEvent[] {
  return raw.map((r) => {
    const p = parseEngineEvent(r);
    if (!p.ok) throw new Error(p.problem);
    return p.event;
  });
}

function updateFor(raw: readonly Raw[], kind: string): UpdateInfo {
  const times = raw.map((e) => (typeof e['timestamp'] === 'number' ? e['timestamp'] : 0)).filter((t) => t > 0);
  return {
    stack: { org: 'acme', project: 'big', stack: 'prod' },
    updateId: 'bench-update',
    kind,
    version: 1,
    result: 'succeeded',
    startTime: Math.min(...times),
    endTime: Math.max(...times) + 1,
    message: 'bench',
    environment: { 'git.head': 'abc', 'vcs.kind': 'github.com', 'vcs.owner': 'acme', 'vcs.repo': 'big' },
    resourceChanges: {},
  };
}

function group(title: string, raw: readonly Raw[], kind: string): BenchGroup {
  const texts = pages(raw);
  const bytes = texts.reduce((n, t) => n + t.length, 0);
  const objects = parsePages(texts);
  const domain = toDomain(objects);
  const update = updateFor(objects, kind);
  const n = domain.length;
  const sample = convertUpdate(update, domain, OPTIONS);
  const cases: BenchCase[] = [
    { name: 'JSON.parse of the API pages', items: n, unit: 'events', fn: () => parsePages(texts) },
    { name: 'parseEngineEvent (wire -> domain)', items: n, unit: 'events', fn: () => toDomain(objects), baseline: 'JSON.parse of the API pages' },
    { name: 'convertUpdate', items: n, unit: 'events', fn: () => convertUpdate(update, domain, OPTIONS), baseline: 'JSON.parse of the API pages' },
    {
      name: 'convertUpdate, keepSameSteps',
      items: n,
      unit: 'events',
      fn: () => convertUpdate(update, domain, { ...OPTIONS, keepSameSteps: true }),
      baseline: 'JSON.parse of the API pages',
    },
    {
      name: 'all three: pages -> trace',
      items: n,
      unit: 'events',
      fn: () => convertUpdate(update, toDomain(parsePages(texts)), OPTIONS),
      baseline: 'JSON.parse of the API pages',
    },
  ];
  return {
    title,
    notes: [
      `${n.toLocaleString('en-US')} events in ${texts.length} pages of ${PAGE_SIZE}, ${(bytes / 1e6).toFixed(1)} MB of JSON;` +
        ` ${sample.operations.length.toLocaleString('en-US')} steps, ${sample.trace.spans.length.toLocaleString('en-US')} spans` +
        ` (same steps dropped), ${sample.unmatchedTerminalEvents.toLocaleString('en-US')} unmatched terminal events`,
    ],
    cases,
  };
}

export const conversionSuite: BenchSuite = {
  name: 'conversion',
  description: 'engine events -> span tree, against JSON.parse of the same API pages',
  groups: () => [
    group('real-preview-nested-components, replicated with unique URNs', replicatedFixture('real-preview-nested-components.ndjson'), 'preview'),
    group('generated large update', generatedUpdate(22_000), 'update'),
  ],
};
