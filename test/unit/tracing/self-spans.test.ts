import { SpanStatusCode, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { afterAll, describe, expect, it } from 'vitest';
import { ExporterError } from '../../../src/errors.js';
import { withSelfSpan } from '../../../src/tracing/self-spans.js';

const exporter = new InMemorySpanExporter();
const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
trace.setGlobalTracerProvider(provider);
afterAll(() => provider.shutdown());

const spanNamed = (name: string) => exporter.getFinishedSpans().find((s) => s.name === name);

describe('withSelfSpan', () => {
  it('leaves the status unset for work that succeeds, with the attributes it was given', async () => {
    expect(await withSelfSpan('ok work', { a: 1 }, async (set) => (set({ b: 2 }), 'done'))).toBe('done');
    expect(spanNamed('ok work')?.status.code).toBe(SpanStatusCode.UNSET);
    expect(spanNamed('ok work')?.attributes).toEqual({ a: 1, b: 2 });
  });

  it('marks the span ERROR with the error code, never the message, when the work throws', async () => {
    const err = new ExporterError('API_SERVER_ERROR', 'upstream said: token pul-secret was bad');
    await expect(withSelfSpan('throwing work', {}, () => Promise.reject(err))).rejects.toBe(err);
    expect(spanNamed('throwing work')?.status).toEqual({ code: SpanStatusCode.ERROR, message: 'API_SERVER_ERROR' });
  });

  it('marks the span ERROR when the work reports its failure as a value', async () => {
    const result = { ok: false, error: new ExporterError('STATE_ERROR', 'disk full') };
    expect(await withSelfSpan('failed sync', {}, () => Promise.resolve(result), (r) => (r.ok ? undefined : r.error))).toBe(result);
    expect(spanNamed('failed sync')?.status).toEqual({ code: SpanStatusCode.ERROR, message: 'STATE_ERROR' });
  });
});
