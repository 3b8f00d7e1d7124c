import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, ExporterError, errorCodeOf } from '../../src/errors.js';

describe('error codes', () => {
  it('documents every error code in docs/errors.md and nothing else', () => {
    const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
    const documented = [...doc.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1]);
    expect(documented.sort()).toEqual(Object.keys(ERROR_CODES).sort());
  });

  it('keeps the code, cause and retryable flag of an ExporterError', () => {
    const cause = new Error('socket hang up');
    const err = new ExporterError('API_NETWORK', 'GET /api/user/stacks failed', { cause, retryable: true });
    expect(err.code).toBe('API_NETWORK');
    expect(err.cause).toBe(cause);
    expect(err.retryable).toBe(true);
    expect(errorCodeOf(err)).toBe('API_NETWORK');
  });

  it('classifies anything else as INTERNAL', () => {
    expect(errorCodeOf(new TypeError('x'))).toBe('INTERNAL');
    expect(errorCodeOf('a string')).toBe('INTERNAL');
  });
});
