import { describe, expect, it } from 'vitest';
import { judgeAttempt } from '../../../src/tracing/export-verdict.js';
import { otlpEncoding } from '../../../src/tracing/otlp-encoding.js';
import type { OtlpAttempt } from '../../../src/tracing/send-otlp-request.js';

const protobuf = otlpEncoding('http/protobuf');
const json = otlpEncoding('http/json');
const NOW = Date.parse('2026-12-06T05:00:00Z');

function answered(status: number, retryAfter: string | null = null, body: Uint8Array = new Uint8Array(0)): OtlpAttempt {
  return { kind: 'answered', status, retryAfter, body };
}

/** ExportTraceServiceResponse { partial_success (1) { rejected_spans (1) = n; error_message (2) = msg } } */
function protobufPartial(rejected: number, message: string): Buffer {
  const text = Buffer.from(message, 'utf8');
  const inner = Buffer.concat([Buffer.from([0x08, rejected]), Buffer.from([0x12, text.length]), text]);
  return Buffer.concat([Buffer.from([0x0a, inner.length]), inner]);
}

describe('judgeAttempt', () => {
  it.each([
    [429, 'http_429'],
    [500, 'http_5xx'],
    [502, 'http_5xx'],
    [503, 'http_5xx'],
    [504, 'http_5xx'],
  ])('retries %i at once under the shared retry policy and keeps the trace for a later cycle', (status, reason) => {
    expect(judgeAttempt(answered(status), protobuf, NOW)).toMatchObject({ ok: false, reason, status, retryable: true, retryNow: true });
  });

  it.each([
    // A misconfigured collector or proxy answers these as often as bad data does: keep the backlog.
    [400, 'http_4xx'],
    [401, 'http_4xx'],
    [403, 'http_4xx'],
    [404, 'http_4xx'],
    [422, 'http_4xx'],
    [501, 'http_5xx'],
    [302, 'http_other'],
  ])('keeps the trace for a later cycle on %i without retrying it now', (status, reason) => {
    expect(judgeAttempt(answered(status), protobuf, NOW)).toMatchObject({ ok: false, reason, status, retryable: true, retryNow: false });
  });

  it('calls 413 too_large, which the sink answers by splitting the batch', () => {
    expect(judgeAttempt(answered(413), protobuf, NOW)).toMatchObject({ ok: false, reason: 'too_large', status: 413, retryNow: false });
  });

  it.each([
    ['120', 120_000],
    ['Sun, 06 Dec 2026 05:00:30 GMT', 30_000],
  ])('reads Retry-After %s', (header, ms) => {
    expect(judgeAttempt(answered(429, header), protobuf, NOW)).toMatchObject({ retryAfterMs: ms });
  });

  it('classifies a deadline, a shutdown and a network error', () => {
    expect(judgeAttempt({ kind: 'timeout' }, protobuf, NOW)).toMatchObject({ ok: false, reason: 'timeout', retryable: true, retryNow: false });
    expect(judgeAttempt({ kind: 'stopped' }, protobuf, NOW)).toMatchObject({ ok: false, reason: 'shutdown', retryable: true, retryNow: false });
    expect(judgeAttempt({ kind: 'network', code: 'ECONNREFUSED', message: 'connect ECONNREFUSED 127.0.0.1:4318' }, protobuf, NOW)).toEqual({
      ok: false,
      reason: 'network',
      retryable: true,
      retryNow: true,
      detail: 'ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:4318',
    });
  });

  it('accepts a plain success', () => {
    expect(judgeAttempt(answered(200), protobuf, NOW)).toEqual({ ok: true });
    expect(judgeAttempt(answered(202, null, Buffer.from('{}')), json, NOW)).toEqual({ ok: true });
  });

  it.each([
    ['http/protobuf', protobufPartial(3, 'bad spans')],
    ['http/json', Buffer.from(JSON.stringify({ partialSuccess: { rejectedSpans: '3', errorMessage: 'bad spans' } }))],
  ] as const)('gives up on the trace for a %s partial success naming rejected spans', (protocol, body) => {
    const verdict = judgeAttempt(answered(200, null, body), otlpEncoding(protocol), NOW);
    expect(verdict).toMatchObject({ ok: false, reason: 'rejected', retryable: false, retryNow: false });
    expect(!verdict.ok && verdict.detail).toBe('the collector rejected 3 span(s): bad spans');
  });

  it('keeps a partial success without rejected spans as a success with a warning', () => {
    expect(judgeAttempt(answered(200, null, protobufPartial(0, 'slow down')), protobuf, NOW)).toEqual({ ok: true, warning: 'slow down' });
  });
});

describe('otlpEncoding partialSuccess', () => {
  it('reads an empty answer as no partial success', () => {
    expect(protobuf.partialSuccess(Buffer.alloc(0))).toBeUndefined();
    expect(json.partialSuccess(Buffer.from('{}'))).toBeUndefined();
  });

  it('ignores unknown fields around the partial success', () => {
    const body = Buffer.concat([Buffer.from([0x10, 0x05]), protobufPartial(7, ''), Buffer.from([0x1d, 1, 2, 3, 4])]);
    expect(protobuf.partialSuccess(body)).toEqual({ rejectedSpans: 7, errorMessage: '' });
  });

  it('reads garbage as no partial success instead of throwing', () => {
    expect(protobuf.partialSuccess(Buffer.from([0x0a, 0x50, 0x01]))).toBeUndefined();
    expect(json.partialSuccess(Buffer.from('not json'))).toBeUndefined();
  });
});
