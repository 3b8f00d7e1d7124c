import { describe, expect, it } from 'vitest';
import { defaultConfig, type Config } from '../../../src/config/schema.js';
import type { TraceRecord } from '../../../src/domain/trace.js';
import { isExporterError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/logging/logger.js';
import { ConsoleSpanSink } from '../../../src/tracing/console-span-sink.js';
import { createSpanSink } from '../../../src/tracing/create-span-sink.js';
import { NoopSpanSink } from '../../../src/tracing/noop-span-sink.js';
import { OtlpSpanSink } from '../../../src/tracing/otlp-span-sink.js';

const TRACE_ID = '5b8efff798038103d269b633813fc60c';

function tracesConfig(overrides: Partial<Config['traces']> = {}): Config['traces'] {
  return { ...defaultConfig().traces, ...overrides };
}

function trace(): TraceRecord {
  return {
    traceId: TRACE_ID,
    resource: { 'pulumi.org': 'acme' },
    droppedSpans: 0,
    spans: [
      {
        traceId: TRACE_ID,
        spanId: 'eee19b7ec3c1b174',
        name: 'update web/prod',
        kind: 'server',
        startTimeMs: 1_700_000_000_001,
        endTimeMs: 1_700_000_002_002,
        attributes: { 'pulumi.update.version': 7, 'pulumi.resource.diffs': ['tags'] },
        status: { code: 'error', message: 'failed' },
        events: [{ name: 'diagnostic', timeMs: 1_700_000_001_000, attributes: { severity: 'error' } }],
      },
      {
        traceId: TRACE_ID,
        spanId: 'eee19b7ec3c1b175',
        parentSpanId: 'eee19b7ec3c1b174',
        name: 'create aws:s3/bucket:Bucket',
        kind: 'internal',
        startTimeMs: 1_700_000_000_500,
        endTimeMs: 1_700_000_001_500,
        attributes: {},
        status: { code: 'unset' },
        events: [],
      },
    ],
  };
}

describe('createSpanSink', () => {
  it('builds the sink named by traces.exporter', async () => {
    const deps = { logger: silentLogger() };
    const otlp = createSpanSink(tracesConfig({ exporter: 'otlp' }), deps);
    expect(otlp).toBeInstanceOf(OtlpSpanSink);
    expect(otlp.enabled).toBe(true);
    expect(createSpanSink(tracesConfig({ exporter: 'console' }), deps)).toBeInstanceOf(ConsoleSpanSink);
    expect(createSpanSink(tracesConfig({ exporter: 'none' }), deps)).toBeInstanceOf(NoopSpanSink);
    await otlp.shutdown();
  });
});

describe('NoopSpanSink', () => {
  it('is disabled and accepts every trace without sending a span', async () => {
    const sink = createSpanSink(tracesConfig({ exporter: 'none' }), { logger: silentLogger() });
    expect(sink.enabled).toBe(false);
    expect(await sink.export([trace()])).toEqual({ code: 'success', spans: 0 });
    await sink.shutdown();
    await sink.shutdown();
  });
});

describe('ConsoleSpanSink', () => {
  it('writes one JSON line per span with hex ids, exact nanoseconds and the resource', async () => {
    const lines: string[] = [];
    const exported: number[] = [];
    const sink = createSpanSink(tracesConfig({ exporter: 'console', serviceName: 'infra' }), {
      logger: silentLogger(),
      write: (line) => lines.push(line),
      observer: { spansExported: (n) => exported.push(n), exportFailed: () => undefined },
    });

    expect(await sink.export([trace()])).toEqual({ code: 'success', spans: 2 });

    expect(lines).toHaveLength(2);
    expect(lines.every((l) => l.endsWith('\n') && !l.slice(0, -1).includes('\n'))).toBe(true);
    const [root, child] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(root).toEqual({
      traceId: TRACE_ID,
      spanId: 'eee19b7ec3c1b174',
      parentSpanId: '',
      name: 'update web/prod',
      kind: 'SPAN_KIND_SERVER',
      startTimeUnixNano: '1700000000001000000',
      endTimeUnixNano: '1700000002002000000',
      attributes: { 'pulumi.update.version': 7, 'pulumi.resource.diffs': ['tags'] },
      events: [{ name: 'diagnostic', timeUnixNano: '1700000001000000000', attributes: { severity: 'error' } }],
      status: { code: 'STATUS_CODE_ERROR', message: 'failed' },
      resource: { 'pulumi.org': 'acme', 'service.name': 'infra' },
    });
    expect(child).toMatchObject({ parentSpanId: 'eee19b7ec3c1b174', kind: 'SPAN_KIND_INTERNAL', status: { code: 'STATUS_CODE_UNSET' } });
    expect(exported).toEqual([2]);
  });

  it('reports a failing writer as a retryable failure instead of throwing', async () => {
    const failures: string[] = [];
    const sink = createSpanSink(tracesConfig({ exporter: 'console' }), {
      logger: silentLogger(),
      write: () => {
        throw new Error('EPIPE');
      },
      observer: { spansExported: () => undefined, exportFailed: (r) => failures.push(r) },
    });
    const outcome = await sink.export([trace()]);
    expect(outcome).toMatchObject({ code: 'failed', retryable: true, reason: 'write' });
    expect(outcome.code === 'failed' && isExporterError(outcome.error) && outcome.error.code).toBe('TRACE_EXPORT_FAILED');
    expect(failures).toEqual(['write']);
  });
});
