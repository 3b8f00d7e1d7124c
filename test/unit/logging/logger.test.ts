import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { ExporterError } from '../../../src/errors.js';
import { createLogger } from '../../../src/logging/logger.js';
import { clearSecretsForTests, registerSecret } from '../../../src/secrets.js';

/** Raw newline, tab and a control character inside: the JSON line escapes them. */
const TOKEN = 'pul-first-part\nsecond-part\tthird-part\u0001last-part';
const PARTS = ['pul-first-part', 'second-part', 'third-part', 'last-part'];

function capture(): { lines: string[]; destination: Writable } {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter((line) => line !== ''));
      done();
    },
  });
  return { lines, destination };
}

function expectNoSecret(lines: readonly string[]): void {
  expect(lines.length).toBeGreaterThan(0);
  for (const line of lines) {
    expect(line).toContain('[REDACTED]');
    for (const part of PARTS) expect(line).not.toContain(part);
    expect(JSON.stringify(JSON.parse(line))).not.toContain(JSON.stringify(TOKEN).slice(1, -1));
  }
}

afterEach(() => {
  clearSecretsForTests();
});

describe('createLogger redaction of a secret with a raw line break and control characters', () => {
  it('redacts it in the message, interpolated arguments and fields', () => {
    registerSecret(TOKEN);
    const { lines, destination } = capture();
    const logger = createLogger({ level: 'info', destination });
    logger.warn(`token is ${TOKEN}`);
    logger.warn('token is %s', TOKEN);
    logger.warn({ header: `Bearer ${TOKEN}`, nested: { list: [TOKEN] } }, 'fields');
    expect(lines).toHaveLength(3);
    expectNoSecret(lines);
  });

  it('redacts it in an error, its details and its whole cause chain', () => {
    registerSecret(TOKEN);
    const { lines, destination } = capture();
    const logger = createLogger({ level: 'info', destination });
    const root = new Error(`socket said ${TOKEN}`);
    const err = new ExporterError('API_UNAUTHORIZED', `rejected ${TOKEN}`, { cause: root, details: { token: TOKEN, hint: TOKEN } });
    logger.error({ err }, 'request failed');
    logger.error(err);
    logger.warn({ reason: new Error(TOKEN) }, 'an error under another key');
    expect(lines).toHaveLength(3);
    expectNoSecret(lines);
    const first = JSON.parse(lines[0] ?? '{}') as { err: { type: string; message: string; code: string } };
    expect(first.err.type).toBe('ExporterError');
    expect(first.err.code).toBe('API_UNAUTHORIZED');
    expect(first.err.message).toBe('rejected [REDACTED]: socket said [REDACTED]');
  });

  it('redacts it in child bindings', () => {
    registerSecret(TOKEN);
    const { lines, destination } = capture();
    createLogger({ level: 'info', destination }).child({ module: 'x', leaked: TOKEN }).info('bound');
    expectNoSecret(lines);
  });

  it('hides the password of any URL that reaches a log line', () => {
    const { lines, destination } = capture();
    createLogger({ level: 'info', destination }).warn({ err: new Error('connect postgres://app:pa55-w0rd@db:5432/x failed') }, 'store');
    expect(lines[0]).not.toContain('pa55-w0rd');
    expect(lines[0]).toContain('postgres://app:[REDACTED]@db:5432/x');
  });

  it('keeps ordinary values and circular objects loggable', () => {
    const { lines, destination } = capture();
    const loop: Record<string, unknown> = { name: 'loop' };
    loop.self = loop;
    createLogger({ level: 'info', destination }).info({ count: 3, ok: true, loop, at: new Date(0) }, 'plain');
    const line = JSON.parse(lines[0] ?? '{}') as Record<string, unknown>;
    expect(line).toMatchObject({ count: 3, ok: true, msg: 'plain', at: '1970-01-01T00:00:00.000Z', loop: { name: 'loop', self: '[Circular]' } });
  });
});
