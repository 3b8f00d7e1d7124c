import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { defaultConfig, type Config } from '../../../src/config/schema.js';
import type { TraceRecord } from '../../../src/domain/trace.js';
import { isExporterError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/logging/logger.js';
import { createSpanSink } from '../../../src/tracing/create-span-sink.js';
import { OtlpSpanSink } from '../../../src/tracing/otlp-span-sink.js';
import type { ExportOutcome, SinkObserver, SpanSink } from '../../../src/tracing/span-sink.js';
import { startOtlpReceiver, type OtlpReceiver } from '../../helpers/otlp-receiver.js';
import { bulkyTrace, expectedOnWire, largeTrace, sampleTrace, TRACE_ID } from './trace-fixture.js';

interface RecordingObserver extends SinkObserver {
  readonly exported: number[];
  readonly failures: string[];
}

function recordingObserver(): RecordingObserver {
  const exported: number[] = [];
  const failures: string[] = [];
  return { exported, failures, spansExported: (n) => exported.push(n), exportFailed: (r) => failures.push(r) };
}

function tracesConfig(url: string, overrides: Partial<Config['traces']> = {}): Config['traces'] {
  return { ...defaultConfig({ traces: { endpoint: url } }).traces, ...overrides };
}

function expectFailed(outcome: ExportOutcome): Extract<ExportOutcome, { code: 'failed' }> {
  if (outcome.code !== 'failed') throw new Error(`expected a failed outcome, got ${JSON.stringify(outcome)}`);
  return outcome;
}

const OTHER_TRACE_ID = '0af7651916cd43dd8448eb211c80319c';

/** The sample trace as another update's: every span under another trace id. */
function anotherTrace(): TraceRecord {
  const trace = sampleTrace();
  return { ...trace, traceId: OTHER_TRACE_ID, spans: trace.spans.map((span) => ({ ...span, traceId: OTHER_TRACE_ID })) };
}

let receiver: OtlpReceiver;
const sinks: SpanSink[] = [];
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => {
  unhandled.push(reason);
};

/** The real sink with its backoff jitter pinned low (50 ms, 100 ms, 200 ms, ...), so retry tests stay fast. */
function sinkFor(overrides: Partial<Config['traces']> = {}, observer?: SinkObserver, url = receiver.url): SpanSink {
  const sink = new OtlpSpanSink(tracesConfig(url, overrides), { logger: silentLogger(), random: () => 0.05, ...(observer ? { observer } : {}) });
  sinks.push(sink);
  return sink;
}

beforeEach(async () => {
  receiver = await startOtlpReceiver();
  unhandled.length = 0;
  process.on('unhandledRejection', onUnhandled);
});

afterEach(async () => {
  await Promise.all(sinks.splice(0).map((s) => s.shutdown()));
  await receiver.close();
  process.off('unhandledRejection', onUnhandled);
  vi.unstubAllEnvs();
  expect(unhandled).toEqual([]);
});

describe.each(['http/protobuf', 'http/json'] as const)('OtlpSpanSink over %s', (protocol) => {
  it('delivers ids, parents, exact nanosecond times, kinds, attributes, events, status and resource unchanged', async () => {
    const observer = recordingObserver();
    const sink = sinkFor({ protocol }, observer);
    const trace = sampleTrace();

    const outcome = await sink.export([trace]);

    expect(outcome).toEqual({ code: 'success', spans: 4 });
    expect(receiver.requests).toHaveLength(1);
    expect(receiver.requests[0]?.contentType).toBe(protocol === 'http/json' ? 'application/json' : 'application/x-protobuf');
    const received = receiver.spans();
    expect(received.map(({ flags: _f, scope: _s, ...rest }) => rest)).toEqual(expectedOnWire(trace));
    for (const span of received) {
      expect(span.scope.name).toBe('pulumi-update-exporter');
      expect(span.flags & 0xff).toBe(1); // sampled
    }
    expect(observer.exported).toEqual([4]);
    expect(observer.failures).toEqual([]);
  });

  it('sends the traces of several updates in one request, each span under its own trace id', async () => {
    const observer = recordingObserver();
    const sink = sinkFor({ protocol }, observer);
    const first = sampleTrace();
    const second = anotherTrace();

    expect(await sink.export([first, second])).toEqual({ code: 'success', spans: 8 });

    expect(receiver.requests).toHaveLength(1);
    expect(receiver.spans().map(({ flags: _f, scope: _s, ...rest }) => rest)).toEqual([...expectedOnWire(first), ...expectedOnWire(second)]);
    expect(observer.exported).toEqual([8]);
  });

  it('fails the export of several traces as a whole when the collector rejects spans of their request', async () => {
    const observer = recordingObserver();
    const sink = sinkFor({ protocol }, observer);
    receiver.rejectNext(1, 'span name too long');

    const outcome = expectFailed(await sink.export([sampleTrace(), anotherTrace()]));

    expect(outcome).toMatchObject({ retryable: false, reason: 'rejected' });
    expect(outcome.error.message).toContain(`2 traces (${TRACE_ID}, ${OTHER_TRACE_ID})`);
    expect(observer.failures).toEqual(['rejected']);
  });

  it('gzips the body when traces.compression is gzip, delivering the same spans', async () => {
    const sink = sinkFor({ protocol, compression: 'gzip' });
    const trace = sampleTrace();

    expect(await sink.export([trace])).toEqual({ code: 'success', spans: 4 });

    expect(receiver.requests[0]?.headers['content-encoding']).toBe('gzip');
    expect(receiver.spans().map(({ flags: _f, scope: _s, ...rest }) => rest)).toEqual(expectedOnWire(trace));
  });

  it('reports spans the collector rejected in a partial success as a non-retryable failure', async () => {
    const observer = recordingObserver();
    const sink = sinkFor({ protocol }, observer);
    receiver.rejectNext(2, 'span name too long');

    const outcome = expectFailed(await sink.export([sampleTrace()]));

    expect(outcome).toMatchObject({ retryable: false, reason: 'rejected' });
    expect(outcome.error.message).toContain('rejected 2 span(s): span name too long');
    expect(observer.failures).toEqual(['rejected']);
    expect(observer.exported).toEqual([]);
  });
});

describe('OtlpSpanSink batching', () => {
  it('splits a large trace into requests of at most batchMaxSpans spans, each span arriving exactly once', async () => {
    const observer = recordingObserver();
    const sink = sinkFor({ batchMaxSpans: 500 }, observer);
    const trace = largeTrace(1200);

    const outcome = await sink.export([trace]);

    expect(outcome).toEqual({ code: 'success', spans: 1200 });
    expect(receiver.requests.map((r) => r.spans.length)).toEqual([500, 500, 200]);
    const ids = receiver.spans().map((s) => s.spanId);
    expect(ids).toEqual(trace.spans.map((s) => s.spanId));
    expect(new Set(ids).size).toBe(1200);
    expect(observer.exported).toEqual([500, 500, 200]);
  });

  it.each(['http/protobuf', 'http/json'] as const)(
    'splits a trace of spans with big attributes by batchMaxBytes over %s, every body within the limit',
    async (protocol) => {
      const observer = recordingObserver();
      const batchMaxBytes = 64 * 1024;
      const sink = sinkFor({ protocol, batchMaxBytes }, observer);
      const trace = bulkyTrace(40, 6_000);

      const outcome = await sink.export([trace]);

      expect(outcome).toEqual({ code: 'success', spans: 40 });
      expect(receiver.requests.length).toBeGreaterThan(1);
      for (const r of receiver.requests) {
        expect(r.status).toBe(200);
        expect(r.body.length).toBeLessThanOrEqual(batchMaxBytes);
      }
      const ids = receiver.spans().map((s) => s.spanId);
      expect(ids).toEqual(trace.spans.map((s) => s.spanId));
      expect(observer.exported.reduce((a, b) => a + b, 0)).toBe(40);
      expect(receiver.spans().every((s) => String(s.attributes['pulumi.test.blob']).length === 6_000)).toBe(true);
    },
  );

  it('applies batchMaxSpans and batchMaxBytes together', async () => {
    const sink = sinkFor({ batchMaxSpans: 3, batchMaxBytes: 1024 * 1024 });
    const trace = bulkyTrace(8, 100);
    expect(await sink.export([trace])).toEqual({ code: 'success', spans: 8 });
    expect(receiver.requests.map((r) => r.spans.length)).toEqual([3, 3, 2]);
  });

  it('sends a span larger than batchMaxBytes alone in its own request and warns about it', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => lines.push(line) });
    const sink = createSpanSink(tracesConfig(receiver.url, { batchMaxBytes: 8 * 1024 }), { logger });
    sinks.push(sink);
    const trace = bulkyTrace(5, 200);
    const big = trace.spans[2];
    if (big === undefined) throw new Error('fixture too small');
    const spans = trace.spans.map((s) => (s === big ? { ...s, attributes: { 'pulumi.test.blob': 'x'.repeat(20_000) } } : s));

    const outcome = await sink.export([{ ...trace, spans }]);

    expect(outcome).toEqual({ code: 'success', spans: 5 });
    expect(receiver.requests.map((r) => r.spans.map((s) => s.spanId))).toEqual([
      [spans[0]?.spanId, spans[1]?.spanId],
      [big.spanId],
      [spans[3]?.spanId, spans[4]?.spanId],
    ]);
    const warnings = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(warnings).toEqual([
      expect.objectContaining({ level: 40, spanId: big.spanId, batchMaxBytes: 8 * 1024, msg: 'span is larger than traces.batchMaxBytes; sending it alone in its own request' }),
    ]);
  });

  it('stops at the first refused batch and reports the trace as failed', async () => {
    const observer = recordingObserver();
    const sink = sinkFor({ batchMaxSpans: 2 }, observer);
    receiver.acceptNext(1);
    receiver.failNext(400);

    const outcome = expectFailed(await sink.export([sampleTrace()]));

    expect(outcome).toMatchObject({ retryable: true, reason: 'http_4xx' });
    expect(outcome.error.message).toContain('batch 2/2');
    expect(receiver.requests.map((r) => r.status)).toEqual([200, 400]);
    expect(observer.exported).toEqual([2]);
    expect(observer.failures).toEqual(['http_4xx']);
  });

  it('splits a batch the collector refuses as too large (413) until every part fits, each span arriving once and in order', async () => {
    const observer = recordingObserver();
    const sink = sinkFor({ batchMaxBytes: 4 * 1024 * 1024 }, observer);
    const limit = 32 * 1024;
    receiver.refuseLargerThan(limit);
    const trace = bulkyTrace(40, 3_000);

    const outcome = await sink.export([trace]);

    expect(outcome).toEqual({ code: 'success', spans: 40 });
    expect(receiver.requests[0]?.status).toBe(413);
    const accepted = receiver.requests.filter((r) => r.status === 200);
    for (const r of accepted) expect(r.body.length).toBeLessThanOrEqual(limit);
    expect(receiver.spans().map((s) => s.spanId)).toEqual(trace.spans.map((s) => s.spanId));
    expect(observer.failures).toEqual([]);
    expect(observer.exported.reduce((a, b) => a + b, 0)).toBe(40);

    // The refused size is remembered: the next trace is cut small enough before it is sent.
    const before = receiver.requests.length;
    expect(await sink.export([bulkyTrace(40, 3_000)])).toEqual({ code: 'success', spans: 40 });
    expect(receiver.requests.slice(before).map((r) => r.status).every((status) => status === 200)).toBe(true);
  });

  it('gives up on a trace only when a single span is still too large for the collector', async () => {
    const observer = recordingObserver();
    const sink = sinkFor({}, observer);
    receiver.refuseLargerThan(16 * 1024);
    const trace = bulkyTrace(3, 100);
    const spans = trace.spans.map((s, i) => (i === 2 ? { ...s, attributes: { 'pulumi.test.blob': 'x'.repeat(40_000) } } : s));

    const outcome = expectFailed(await sink.export([{ ...trace, spans }]));

    expect(outcome).toMatchObject({ retryable: false, reason: 'too_large' });
    expect(outcome.error.message).toContain('HTTP 413');
    expect(receiver.requests.map((r) => [r.status, r.spans.length])).toEqual([
      [413, 3],
      [200, 2],
      [413, 1],
    ]);
    expect(observer.failures).toEqual(['too_large']);
  });

  it('still reports success when the metrics observer throws', async () => {
    const sink = sinkFor({}, {
      spansExported: () => {
        throw new Error('metrics broken');
      },
      exportFailed: () => {
        throw new Error('metrics broken');
      },
    });
    expect(await sink.export([sampleTrace()])).toEqual({ code: 'success', spans: 4 });
    receiver.failNext(400);
    expect(await sink.export([sampleTrace()])).toMatchObject({ code: 'failed', reason: 'http_4xx' });
  });

  it('exports nothing and succeeds for a trace without spans', async () => {
    const sink = sinkFor();
    const outcome = await sink.export([{ traceId: TRACE_ID, resource: {}, spans: [], droppedSpans: 0 }]);
    expect(outcome).toEqual({ code: 'success', spans: 0 });
    expect(receiver.requests).toEqual([]);
  });

  it('keeps concurrent exports of different traces apart', async () => {
    const sink = sinkFor();
    const a = sampleTrace();
    const b = largeTrace(3);
    const [ra, rb] = await Promise.all([sink.export([a]), sink.export([b])]);
    expect(ra).toEqual({ code: 'success', spans: 4 });
    expect(rb).toEqual({ code: 'success', spans: 3 });
    expect(receiver.requests).toHaveLength(2);
    expect(receiver.spans()).toHaveLength(7);
  });
});

describe('OtlpSpanSink failures', () => {
  it('reports a collector answering 503 past the timeout as a retryable http_5xx failure and tells the observer once', async () => {
    const observer = recordingObserver();
    const sink = sinkFor({ timeoutMillis: 300 }, observer);
    receiver.failNext(503, 1_000_000);

    const outcome = expectFailed(await sink.export([sampleTrace()]));

    expect(outcome).toMatchObject({ retryable: true, reason: 'http_5xx' });
    expect(isExporterError(outcome.error) && outcome.error.code).toBe('TRACE_EXPORT_FAILED');
    expect(observer.failures).toEqual(['http_5xx']);
    expect(observer.exported).toEqual([]);
  });

  it('retries 500 like the Pulumi client does and then succeeds', async () => {
    const sink = sinkFor();
    receiver.failNext(500);
    expect(await sink.export([sampleTrace()])).toEqual({ code: 'success', spans: 4 });
    expect(receiver.requests.map((r) => r.status)).toEqual([500, 200]);
  });

  it('reports 429 past the timeout as a retryable http_429 failure', async () => {
    const sink = sinkFor({ timeoutMillis: 300 });
    receiver.failNext(429, 1_000_000);
    expect(expectFailed(await sink.export([sampleTrace()]))).toMatchObject({ retryable: true, reason: 'http_429' });
  });

  it('waits as long as Retry-After asks before sending again', async () => {
    const sink = sinkFor({ timeoutMillis: 5_000 });
    receiver.failNext(429, 1, '1');
    const started = performance.now();

    expect(await sink.export([sampleTrace()])).toEqual({ code: 'success', spans: 4 });

    expect(performance.now() - started).toBeGreaterThanOrEqual(990);
    expect(receiver.requests.map((r) => r.status)).toEqual([429, 200]);
  });

  it('does not retry within the batch when Retry-After asks for more than the retry cap, and keeps the trace', async () => {
    const sink = sinkFor({ timeoutMillis: 5_000 });
    receiver.failNext(429, 1, '3600');

    const outcome = expectFailed(await sink.export([sampleTrace()]));

    expect(outcome).toMatchObject({ retryable: true, reason: 'http_429' });
    expect(outcome.error.message).toContain('asked to wait 3600 s');
    expect(receiver.requests).toHaveLength(1);
  });

  it.each([400, 401, 403, 404, 422])('keeps the trace for a later cycle when a collector or proxy answers %i, without retrying now', async (status) => {
    const observer = recordingObserver();
    const sink = sinkFor({}, observer);
    receiver.failNext(status);

    const outcome = expectFailed(await sink.export([sampleTrace()]));

    expect(outcome).toMatchObject({ retryable: true, reason: 'http_4xx' });
    expect(outcome.error.message).toContain(`HTTP ${status}`);
    expect(receiver.requests).toHaveLength(1);
    expect(observer.failures).toEqual(['http_4xx']);
  });

  it('retries a transient 503 within the timeout and then succeeds', async () => {
    const sink = sinkFor({ timeoutMillis: 5_000 });
    receiver.failNext(503, 1);

    const outcome = await sink.export([sampleTrace()]);

    expect(outcome).toEqual({ code: 'success', spans: 4 });
    expect(receiver.requests.map((r) => r.status)).toEqual([503, 200]);
    expect(receiver.spans()).toHaveLength(4);
  });

  it('reports a collector that is down as a retryable network failure within the timeout', { timeout: 5_000 }, async () => {
    const down = await startOtlpReceiver();
    await down.close();
    const observer = recordingObserver();
    const sink = sinkFor({ timeoutMillis: 700 }, observer, down.url);

    const outcome = expectFailed(await sink.export([sampleTrace()]));

    expect(outcome).toMatchObject({ retryable: true, reason: 'network' });
    expect(outcome.error.message).toContain('ECONNREFUSED');
    expect(observer.failures).toEqual(['network']);
  });

  it('gives up on a collector that never answers after the timeout and recovers for the next trace', { timeout: 5_000 }, async () => {
    const sink = sinkFor({ timeoutMillis: 300 });
    receiver.hangNext(1);

    const first = expectFailed(await sink.export([sampleTrace()]));
    const second = await sink.export([sampleTrace()]);

    expect(first).toMatchObject({ retryable: true, reason: 'timeout' });
    expect(second).toEqual({ code: 'success', spans: 4 });
  });

  it('bounds an export by the timeout even when the collector keeps the connection busy', { timeout: 5_000 }, async () => {
    const observer = recordingObserver();
    const sink = sinkFor({ timeoutMillis: 300 }, observer);
    receiver.trickleNext(1);

    const first = expectFailed(await sink.export([sampleTrace()]));
    const second = await sink.export([sampleTrace()]);

    expect(first).toMatchObject({ retryable: true, reason: 'timeout' });
    expect(second).toEqual({ code: 'success', spans: 4 });
    expect(observer.failures).toEqual(['timeout']);
  });

  it('sends the configured endpoint and headers and ignores OTEL_EXPORTER_OTLP_* in the environment', async () => {
    vi.stubEnv('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', 'http://127.0.0.1:9/v1/traces');
    vi.stubEnv('OTEL_EXPORTER_OTLP_ENDPOINT', 'http://127.0.0.1:9');
    vi.stubEnv('OTEL_EXPORTER_OTLP_TIMEOUT', '1');
    vi.stubEnv('OTEL_EXPORTER_OTLP_COMPRESSION', 'gzip');
    const sink = sinkFor({ headers: { 'x-scope-orgid': 'tenant-7' } });

    expect(await sink.export([sampleTrace()])).toEqual({ code: 'success', spans: 4 });
    expect(receiver.requests[0]?.headers['x-scope-orgid']).toBe('tenant-7');
    expect(receiver.requests[0]?.headers['content-encoding']).toBeUndefined();
  });

  it('sends user info in the endpoint as Basic authentication, and keeps it out of the error message', async () => {
    const url = receiver.url.replace('http://', 'http://tenant:s%40cret@');
    const sink = sinkFor({}, undefined, url);

    expect(await sink.export([sampleTrace()])).toEqual({ code: 'success', spans: 4 });
    expect(receiver.requests[0]?.headers.authorization).toBe(`Basic ${Buffer.from('tenant:s@cret').toString('base64')}`);
    receiver.failNext(403);
    const outcome = expectFailed(await sink.export([sampleTrace()]));
    expect(outcome.error.message).not.toContain('cret');
  });

  it('does not follow a redirect, and keeps the trace for a later cycle', async () => {
    const redirector = createServer((req, res) => {
      req.resume();
      res.writeHead(307, { location: receiver.url }).end();
    });
    await new Promise<void>((resolve) => redirector.listen(0, '127.0.0.1', resolve));
    const port = (redirector.address() as AddressInfo).port;
    try {
      const sink = sinkFor({}, undefined, `http://127.0.0.1:${port}/v1/traces`);
      const outcome = expectFailed(await sink.export([sampleTrace()]));
      expect(outcome).toMatchObject({ retryable: true, reason: 'http_other' });
      expect(outcome.error.message).toContain('HTTP 307');
      expect(receiver.requests).toEqual([]);
    } finally {
      redirector.closeAllConnections();
      await new Promise<void>((resolve) => redirector.close(() => resolve()));
    }
  });

  it('rejects a malformed record with a coded, non-retryable error before sending anything', async () => {
    const observer = recordingObserver();
    const sink = sinkFor({}, observer);
    const trace = sampleTrace();
    const bad = { ...trace, spans: [{ ...trace.spans[0]!, spanId: 'XYZ' }] };

    const outcome = expectFailed(await sink.export([bad]));

    expect(outcome).toMatchObject({ retryable: false, reason: 'invalid' });
    expect(isExporterError(outcome.error) && outcome.error.code).toBe('TRACE_EXPORT_FAILED');
    expect(receiver.requests).toEqual([]);
    expect(observer.failures).toEqual(['invalid']);
  });
});

describe('OtlpSpanSink shutdown', () => {
  it('is idempotent and refuses later exports as retryable', async () => {
    const sink = sinkFor();
    expect(await sink.export([sampleTrace()])).toMatchObject({ code: 'success' });

    await Promise.all([sink.shutdown(), sink.shutdown()]);
    await sink.shutdown();

    expect(expectFailed(await sink.export([sampleTrace()]))).toMatchObject({ retryable: true, reason: 'shutdown' });
    expect(receiver.requests).toHaveLength(1);
  });

  it('finishes within its bound while an export hangs on the collector', { timeout: 5_000 }, async () => {
    const sink = sinkFor({ timeoutMillis: 300 });
    receiver.hangNext(1);
    const pending = sink.export([sampleTrace()]);
    await vi.waitFor(() => expect(receiver.requests).toHaveLength(1));
    const started = performance.now();

    await sink.shutdown();

    expect(performance.now() - started).toBeLessThan(1_000);
    expect(expectFailed(await pending)).toMatchObject({ retryable: true, reason: 'timeout' });
  });
});
