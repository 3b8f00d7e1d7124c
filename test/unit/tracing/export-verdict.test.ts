import { describe, expect, it } from 'vitest';
import type { HttpExchange } from '../../../src/tracing/exchange-recorder.js';
import { judgeBatch, parsePartialSuccess } from '../../../src/tracing/export-verdict.js';

function exchange(overrides: Partial<HttpExchange> = {}): HttpExchange {
  return { timedOut: false, ...overrides };
}

function withCode<T extends Error>(error: T, code: string | number): T {
  return Object.assign(error, { code });
}

/** ExportTraceServiceResponse { partial_success (1) { rejected_spans (1) = n; error_message (2) = msg } } */
function protobufPartial(rejected: number, message: string): Buffer {
  const text = Buffer.from(message, 'utf8');
  const inner = Buffer.concat([Buffer.from([0x08, rejected]), Buffer.from([0x12, text.length]), text]);
  return Buffer.concat([Buffer.from([0x0a, inner.length]), inner]);
}

describe('judgeBatch', () => {
  it.each([
    [429, 'http_429', true],
    [502, 'http_5xx', true],
    [503, 'http_5xx', true],
    [504, 'http_5xx', true],
  ])('reads the status %i the SDK retried and hid from the last exchange', (status, reason, retryable) => {
    const verdict = judgeBatch({ ok: false, error: new Error('Export failed with retryable status') }, [exchange({ status })], 'http/protobuf');
    expect(verdict).toMatchObject({ ok: false, reason, retryable, status });
  });

  it.each([
    [400, 'http_4xx', false],
    // A collector-side problem (credentials, path): retried until an operator fixes it.
    [401, 'http_4xx', true],
    [404, 'http_4xx', true],
    [413, 'http_4xx', false],
    [422, 'http_4xx', false],
    [500, 'http_5xx', true],
    [501, 'http_5xx', true],
    [302, 'http_other', false],
  ])('classifies the status %i carried by the SDK error', (status, reason, retryable) => {
    const verdict = judgeBatch({ ok: false, error: withCode(new Error('Bad Request'), status) }, [exchange({ status })], 'http/json');
    expect(verdict).toMatchObject({ ok: false, reason, retryable, status });
  });

  it('classifies a request timeout as retryable timeout', () => {
    expect(judgeBatch({ ok: false, error: new Error('Request timed out') }, [exchange({ timedOut: true })], 'http/protobuf')).toMatchObject({
      ok: false,
      reason: 'timeout',
      retryable: true,
    });
  });

  it.each(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'CERT_HAS_EXPIRED'])('classifies the network error %s as retryable network', (code) => {
    const verdict = judgeBatch({ ok: false, error: withCode(new Error(`connect ${code}`), code) }, [exchange({ errorCode: code })], 'http/protobuf');
    expect(verdict).toMatchObject({ ok: false, reason: 'network', retryable: true });
  });

  it('treats a failure nobody judged (such as the SDK concurrency limit) as retryable unknown', () => {
    expect(judgeBatch({ ok: false, error: new Error('Concurrent export limit reached') }, [], 'http/protobuf')).toMatchObject({
      ok: false,
      reason: 'unknown',
      retryable: true,
    });
  });

  it('accepts a plain success', () => {
    expect(judgeBatch({ ok: true }, [exchange({ status: 200, body: Buffer.alloc(0) })], 'http/protobuf')).toEqual({ ok: true });
  });

  it.each([
    ['http/protobuf', protobufPartial(3, 'bad spans')],
    ['http/json', Buffer.from(JSON.stringify({ partialSuccess: { rejectedSpans: '3', errorMessage: 'bad spans' } }))],
  ] as const)('turns a %s partial success with rejected spans into a non-retryable rejected failure', (protocol, body) => {
    const verdict = judgeBatch({ ok: true }, [exchange({ status: 200, body })], protocol);
    expect(verdict).toMatchObject({ ok: false, reason: 'rejected', retryable: false });
    expect(!verdict.ok && verdict.detail).toBe('the collector rejected 3 span(s): bad spans');
  });

  it('keeps a partial success without rejected spans as a success with a warning', () => {
    expect(judgeBatch({ ok: true }, [exchange({ status: 200, body: protobufPartial(0, 'slow down') })], 'http/protobuf')).toEqual({
      ok: true,
      warning: 'slow down',
    });
  });

  it('judges by the last exchange when the SDK retried', () => {
    const verdict = judgeBatch({ ok: true }, [exchange({ status: 503 }), exchange({ status: 200, body: Buffer.alloc(0) })], 'http/protobuf');
    expect(verdict).toEqual({ ok: true });
  });
});

describe('parsePartialSuccess', () => {
  it('reads an empty response as no partial success', () => {
    expect(parsePartialSuccess(Buffer.alloc(0), 'http/protobuf')).toBeUndefined();
    expect(parsePartialSuccess(Buffer.from('{}'), 'http/json')).toBeUndefined();
  });

  it('ignores unknown fields around the partial success', () => {
    const body = Buffer.concat([Buffer.from([0x10, 0x05]), protobufPartial(7, ''), Buffer.from([0x1d, 1, 2, 3, 4])]);
    expect(parsePartialSuccess(body, 'http/protobuf')).toEqual({ rejectedSpans: 7, errorMessage: '' });
  });

  it('reads garbage as no partial success instead of throwing', () => {
    expect(parsePartialSuccess(Buffer.from([0x0a, 0x50, 0x01]), 'http/protobuf')).toBeUndefined();
    expect(parsePartialSuccess(Buffer.from('not json'), 'http/json')).toBeUndefined();
  });
});
