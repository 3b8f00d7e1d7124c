import { afterEach, describe, expect, it } from 'vitest';
import { describeConfig } from '../../../src/config/describe-config.js';
import { loadConfig } from '../../../src/config/load-config.js';
import { requireToken } from '../../../src/config/require-token.js';
import { defaultConfig } from '../../../src/config/schema.js';
import { ExporterError } from '../../../src/errors.js';
import { clearSecretsForTests } from '../../../src/secrets.js';

const TOKEN = 'pul-describe-token-0000000000';

afterEach(() => {
  clearSecretsForTests();
});

describe('describeConfig', () => {
  it('redacts the token, header values and URL passwords and leaves the config untouched', () => {
    const config = loadConfig({
      env: {
        PULUMI_ACCESS_TOKEN: TOKEN,
        OTEL_EXPORTER_OTLP_HEADERS: 'x-api-key=abcdef',
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://user:hunter22@otlp.example.com/v1/traces',
      },
    });
    const described = describeConfig(config);
    expect(described.pulumi.accessToken).toBe('[REDACTED]');
    expect(described.traces.headers).toEqual({ 'x-api-key': '[REDACTED]' });
    expect(described.traces.endpoint).toBe('https://user:[REDACTED]@otlp.example.com/v1/traces');
    expect(JSON.stringify(described)).not.toContain(TOKEN);
    expect(config.pulumi.accessToken).toBe(TOKEN);
  });

  it('redacts the metrics push headers and endpoint password too', () => {
    const described = describeConfig(
      loadConfig({
        env: {
          OTEL_EXPORTER_OTLP_METRICS_HEADERS: 'authorization=Bearer%20m3tr1cs',
          OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: 'https://user:hunter33@otlp.example.com/v1/metrics',
        },
      }),
    );
    expect(described.metricsPush.headers).toEqual({ authorization: '[REDACTED]' });
    expect(described.metricsPush.endpoint).toBe('https://user:[REDACTED]@otlp.example.com/v1/metrics');
  });

  it('shows an unset token as empty rather than as redacted', () => {
    expect(describeConfig(defaultConfig()).pulumi.accessToken).toBe('');
  });
});

describe('requireToken', () => {
  it('accepts a config with a token and an org', () => {
    expect(() => requireToken(defaultConfig({ pulumi: { accessToken: TOKEN, orgs: [{ name: 'acme' }] } }))).not.toThrow();
  });

  it('tells the user how to set the token and the orgs, or to try the demo', () => {
    let caught: unknown;
    try {
      requireToken(defaultConfig());
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ExporterError);
    const err = caught as ExporterError;
    expect(err.code).toBe('CONFIG_MISSING_TOKEN');
    expect(err.message).toContain('PULUMI_ACCESS_TOKEN (or PULUMI_ACCESS_TOKEN_FILE');
    expect(err.message).toContain('EXPORTER_ORGS');
    expect(err.message).toContain('npm run demo');
    expect(err.message).toContain('pulumi-update-exporter demo');
  });

  it('requires an org even with a token', () => {
    expect(() => requireToken(defaultConfig({ pulumi: { accessToken: TOKEN } }))).toThrow(/EXPORTER_ORGS/);
  });
});
