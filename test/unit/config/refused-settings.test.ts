import { readdirSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { unknownEnvWarnings } from '../../../src/config/env-warnings.js';
import { formatConfigProblems, loadConfig } from '../../../src/config/load-config.js';
import { validateCommand } from '../../../src/config/validate-command.js';
import { ExporterError } from '../../../src/errors.js';
import { clearSecretsForTests, redact } from '../../../src/secrets.js';

afterEach(() => {
  clearSecretsForTests();
});

function problemsOf(run: () => unknown): string {
  try {
    run();
  } catch (err) {
    if (err instanceof ExporterError) return formatConfigProblems(err);
    throw err;
  }
  throw new Error('expected the configuration to be refused');
}

function withFile(settings: Record<string, unknown>): Parameters<typeof loadConfig>[0] {
  const text = stringify(settings);
  return { configPath: '/etc/exporter.yaml', env: {}, readFile: () => text };
}

/** Every duration key, its bound and the unit named in the message. */
const DURATIONS: readonly [section: string, key: string, max: number, unit: string][] = [
  ['pulumi', 'requestTimeoutMillis', 600_000, 'milliseconds'],
  ['pulumi', 'retryBaseDelayMillis', 600_000, 'milliseconds'],
  ['pulumi', 'retryMaxDelayMillis', 600_000, 'milliseconds'],
  ['poll', 'intervalSeconds', 86_400, 'seconds'],
  ['poll', 'backfillDays', 3_650, 'days'],
  ['poll', 'initialJitterSeconds', 3_600, 'seconds'],
  ['poll', 'progressLogIntervalSeconds', 3_600, 'seconds'],
  ['traces', 'timeoutMillis', 600_000, 'milliseconds'],
];

describe('durations beyond what a timer holds', () => {
  it.each(DURATIONS)('refuses %s.%s above its bound, naming the key and the bound', (section, key, max, unit) => {
    const text = problemsOf(() => loadConfig(withFile({ [section]: { [key]: 2 ** 31 } })));
    expect(text).toContain(`${section}.${key}: must be at most ${max} ${unit}`);
    expect(text).toContain('(in /etc/exporter.yaml)');
  });

  it.each(DURATIONS)('accepts %s.%s at exactly its bound', (section, key, max) => {
    const config = loadConfig(withFile({ [section]: { [key]: max } })) as unknown as Record<string, Record<string, number>>;
    expect(config[section]?.[key]).toBe(max);
  });

  it('names the variable of a 3,000,000 s poll interval', () => {
    const text = problemsOf(() => loadConfig({ env: { EXPORTER_POLL_INTERVAL_SECONDS: '3000000' } }));
    expect(text).toContain('poll.intervalSeconds: must be at most 86400 seconds (1 day) (from EXPORTER_POLL_INTERVAL_SECONDS)');
  });

  it('refuses an OTLP timeout that overflows a timer, from its variable', () => {
    const text = problemsOf(() => loadConfig({ env: { OTEL_EXPORTER_OTLP_TIMEOUT: '1e12' } }));
    expect(text).toContain('traces.timeoutMillis: must be at most 600000 milliseconds (10 minutes) (from OTEL_EXPORTER_OTLP_TIMEOUT)');
  });
});

describe('a token with whitespace or control characters', () => {
  const HALF = 'pul-0123456789abcdef';
  const OTHER_HALF = '0123456789abcdef-second';

  it('is refused when a token file holds a line break inside the token, without printing either half', () => {
    const text = problemsOf(() =>
      loadConfig({
        env: { PULUMI_ACCESS_TOKEN_FILE: '/run/secrets/token' },
        readFile: () => `${HALF}\n${OTHER_HALF}\n`,
      }),
    );
    expect(text).toContain('pulumi.accessToken: contains whitespace or a control character');
    expect(text).toContain('(from PULUMI_ACCESS_TOKEN_FILE)');
    expect(text).not.toContain(HALF);
    expect(text).not.toContain(OTHER_HALF);
  });

  it.each([
    ['a space', `${HALF} ${OTHER_HALF}`],
    ['a tab', `${HALF}\t${OTHER_HALF}`],
    ['an escape character', `${HALF}\u001b${OTHER_HALF}`],
    ['a DEL character', `${HALF}\u007f${OTHER_HALF}`],
    ['a non-ASCII character', `${HALF}\u00e9${OTHER_HALF}`],
  ])('is refused with %s in PULUMI_ACCESS_TOKEN', (_what, token) => {
    const text = problemsOf(() => loadConfig({ env: { PULUMI_ACCESS_TOKEN: token } }));
    expect(text).toContain('pulumi.accessToken: contains whitespace or a control character');
    expect(text).toContain('(from PULUMI_ACCESS_TOKEN)');
    expect(text).not.toContain(OTHER_HALF);
  });

  it('is accepted when the file only ends with a line break', () => {
    const config = loadConfig({ env: { PULUMI_ACCESS_TOKEN_FILE: '/t' }, readFile: () => `${HALF}${OTHER_HALF}\n` });
    expect(config.pulumi.accessToken).toBe(`${HALF}${OTHER_HALF}`);
  });
});

describe('a URL as the state location', () => {
  const PASSWORD = 'hunter2-s3cret-pw';

  it.each(['mysql', 'http', 'https', 'file', 'sqlite'])('refuses a %s:// URL, naming EXPORTER_STATE and never the password', (scheme) => {
    const text = problemsOf(() => loadConfig({ env: { EXPORTER_STATE: `${scheme}://user:${PASSWORD}@db.example.com/state` } }));
    expect(text).toContain(`state.path: must be a SQLite file path (or :memory:) or a postgres:// URL, not a ${scheme}:// URL (from EXPORTER_STATE)`);
    expect(text).not.toContain(PASSWORD);
  });

  it.each(['postgres', 'postgresql'])('takes a %s:// URL as the PostgreSQL store', (scheme) => {
    expect(loadConfig({ env: { EXPORTER_STATE: `${scheme}://user:${PASSWORD}@db.example.com/state` } }).state.path).toMatch(new RegExp(`^${scheme}://`));
  });

  it('makes validate exit 2 naming EXPORTER_STATE, without the password and without creating a file', () => {
    const lines: string[] = [];
    const code = validateCommand(undefined, { EXPORTER_STATE: `mysql://user:${PASSWORD}@db/state` }, (l) => lines.push(l));
    expect(code).toBe(2);
    expect(lines.join('\n')).toContain('(from EXPORTER_STATE)');
    expect(lines.join('\n')).not.toContain(PASSWORD);
    expect(readdirSync('.').filter((name) => name.includes(PASSWORD) || name.startsWith('mysql'))).toEqual([]);
  });

  it('registers the password of a state URL so no later message can print it', () => {
    loadConfig({ env: { EXPORTER_STATE: `postgres://user:${PASSWORD}@db/state` } });
    expect(redact(`connect failed for ${PASSWORD}`)).toBe('connect failed for [REDACTED]');
  });

  it('keeps file paths, relative paths and :memory: as they are', () => {
    for (const path of ['./data/state.db', '/var/lib/exporter/state.db', 'state', ':memory:', 'C:\\data\\state.db']) {
      expect(loadConfig({ env: { EXPORTER_STATE: path } }).state.path).toBe(path);
    }
  });
});

describe('credentials in URL-valued settings', () => {
  it('are hidden by validate, which keeps the rest of the URL', () => {
    const lines: string[] = [];
    const code = validateCommand(undefined, { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://tenant:c0llect0r-pw@otel.example.com/v1/traces' }, (l) =>
      lines.push(l),
    );
    expect(code).toBe(0);
    const text = lines.join('\n');
    expect(text).not.toContain('c0llect0r-pw');
    expect(text).toContain('https://tenant:[REDACTED]@otel.example.com/v1/traces');
  });

  it('are hidden in any text that passes redact, registered or not', () => {
    expect(redact('dial postgres://app:pa55word@10.0.0.5:5432/exporter failed')).toBe(
      'dial postgres://app:[REDACTED]@10.0.0.5:5432/exporter failed',
    );
    expect(redact('see https://example.com/a:b@c and user@example.com')).toBe('see https://example.com/a:b@c and user@example.com');
  });
});

describe('a misspelled EXPORTER_ variable', () => {
  it('is named in a warning with the variable it probably meant, and its value is not shown', () => {
    expect(unknownEnvWarnings({ EXPORTER_POLL_INTERVAL: '30-secret-ish', EXPORTER_ORGS: 'acme', HOME: '/root' })).toEqual([
      'unknown environment variable EXPORTER_POLL_INTERVAL is ignored; did you mean "EXPORTER_POLL_INTERVAL_SECONDS"?',
    ]);
  });

  it('is warned about without a suggestion when nothing is close', () => {
    expect(unknownEnvWarnings({ EXPORTER_SOMETHING_ELSE_ENTIRELY: '1' })).toEqual([
      'unknown environment variable EXPORTER_SOMETHING_ELSE_ENTIRELY is ignored',
    ]);
  });

  it('is reported by validate, which still succeeds', () => {
    const lines: string[] = [];
    expect(validateCommand(undefined, { EXPORTER_BACKFIL_DAYS: '3' }, (l) => lines.push(l))).toBe(0);
    expect(lines).toContain(
      'warning: unknown environment variable EXPORTER_BACKFIL_DAYS is ignored; did you mean "EXPORTER_BACKFILL_DAYS"?',
    );
  });
});
