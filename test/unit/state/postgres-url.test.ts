import { afterEach, describe, expect, it } from 'vitest';
import { clearSecretsForTests, redact } from '../../../src/secrets.js';
import { registerPostgresSecrets } from '../../../src/state/postgres-url.js';

describe('registerPostgresSecrets', () => {
  afterEach(() => clearSecretsForTests());

  it('hides the URL password as written and decoded, a password parameter and PGPASSWORD', () => {
    registerPostgresSecrets('postgres://app:p%40ss-word@db:5432/exporter?sslmode=require&password=param-secret', { PGPASSWORD: 'env-secret' });
    const text = 'p%40ss-word p@ss-word param-secret env-secret sslmode=require';
    expect(redact(text)).toBe('[REDACTED] [REDACTED] [REDACTED] [REDACTED] sslmode=require');
  });

  it('registers nothing from an unparsable URL but still PGPASSWORD', () => {
    registerPostgresSecrets('postgres://app:unparsable@[oops', { PGPASSWORD: 'env-secret' });
    expect(redact('env-secret')).toBe('[REDACTED]');
  });
});
