import { afterEach, describe, expect, it } from 'vitest';
import { ConfigValidationError, formatConfigProblems, loadConfig } from '../../../src/config/load-config.js';
import { defaultConfig } from '../../../src/config/schema.js';
import { ExporterError } from '../../../src/errors.js';
import { clearSecretsForTests, redact } from '../../../src/secrets.js';

const TOKEN = 'pul-0123456789abcdef0123456789abcdef';

/** An in-memory file system for readFile. */
function files(entries: Record<string, string>): (path: string) => string {
  return (path) => {
    const content = entries[path];
    if (content === undefined) {
      throw Object.assign(new Error(`ENOENT: no such file or directory, open '${path}'`), { code: 'ENOENT' });
    }
    return content;
  };
}

function loadError(run: () => unknown): ExporterError {
  try {
    run();
  } catch (err) {
    if (err instanceof ExporterError) return err;
    throw err;
  }
  throw new Error('expected loadConfig to throw');
}

afterEach(() => {
  clearSecretsForTests();
});

describe('loadConfig layers', () => {
  it('returns the schema defaults when there is no file and no environment', () => {
    expect(loadConfig({ env: {} })).toEqual(defaultConfig());
  });

  it('lets each layer override the one below: defaults < file < environment < *_FILE secret', () => {
    const readFile = files({
      '/etc/x.yaml': 'server:\n  port: 1111\npoll:\n  intervalSeconds: 30\npulumi:\n  accessToken: from-file-token\n',
      '/run/token': `  ${TOKEN}\n`,
    });
    const fileOnly = loadConfig({ configPath: '/etc/x.yaml', env: {}, readFile });
    expect(fileOnly.server.port).toBe(1111);
    expect(fileOnly.server.host).toBe('0.0.0.0');
    expect(fileOnly.poll.intervalSeconds).toBe(30);
    expect(fileOnly.pulumi.accessToken).toBe('from-file-token');

    const withEnv = loadConfig({
      configPath: '/etc/x.yaml',
      env: { EXPORTER_PORT: '2222', PULUMI_ACCESS_TOKEN: 'from-env-token' },
      readFile,
    });
    expect(withEnv.server.port).toBe(2222);
    expect(withEnv.poll.intervalSeconds).toBe(30);
    expect(withEnv.pulumi.accessToken).toBe('from-env-token');

    const withSecretFile = loadConfig({
      configPath: '/etc/x.yaml',
      env: { PULUMI_ACCESS_TOKEN: 'from-env-token', PULUMI_ACCESS_TOKEN_FILE: '/run/token' },
      readFile,
    });
    expect(withSecretFile.pulumi.accessToken).toBe(TOKEN);
  });

  it('reads the file named by EXPORTER_CONFIG, and --config wins over it', () => {
    const readFile = files({ '/a.yaml': 'server:\n  port: 1\n', '/b.yaml': 'server:\n  port: 2\n' });
    expect(loadConfig({ env: { EXPORTER_CONFIG: '/a.yaml' }, readFile }).server.port).toBe(1);
    expect(loadConfig({ configPath: '/b.yaml', env: { EXPORTER_CONFIG: '/a.yaml' }, readFile }).server.port).toBe(2);
  });

  it('accepts JSON as YAML and an empty file as no settings', () => {
    const readFile = files({ '/c.json': '{ "log": { "level": "debug" } }', '/empty.yaml': '# nothing\n' });
    expect(loadConfig({ configPath: '/c.json', env: {}, readFile }).log.level).toBe('debug');
    expect(loadConfig({ configPath: '/empty.yaml', env: {}, readFile })).toEqual(defaultConfig());
  });

  it('maps every EXPORTER_ and PULUMI_ variable to its key', () => {
    const config = loadConfig({
      env: {
        PULUMI_ACCESS_TOKEN: TOKEN,
        PULUMI_BACKEND_URL: 'https://api.pulumi.example.com',
        EXPORTER_ORGS: 'acme, globex ,',
        EXPORTER_HOST: '127.0.0.1',
        EXPORTER_PORT: '9000',
        EXPORTER_STATE: ':memory:',
        EXPORTER_POLL_INTERVAL_SECONDS: '15',
        EXPORTER_BACKFILL_DAYS: '0.5',
        EXPORTER_LOG_LEVEL: 'debug',
      },
    });
    expect(config.pulumi.accessToken).toBe(TOKEN);
    expect(config.pulumi.backendUrl).toBe('https://api.pulumi.example.com');
    expect(config.pulumi.orgs).toEqual([
      { name: 'acme', include: [], exclude: [] },
      { name: 'globex', include: [], exclude: [] },
    ]);
    expect(config.server).toEqual({ host: '127.0.0.1', port: 9000 });
    expect(config.state.path).toBe(':memory:');
    expect(config.poll.intervalSeconds).toBe(15);
    expect(config.poll.backfillDays).toBe(0.5);
    expect(config.log.level).toBe('debug');
  });

  it('treats an empty environment variable as unset', () => {
    expect(loadConfig({ env: { EXPORTER_PORT: '', EXPORTER_ORGS: '  ' } })).toEqual(defaultConfig());
  });

  it('lets EXPORTER_ORGS choose the orgs while an org from the file keeps its include and exclude', () => {
    const readFile = files({
      '/x.yaml': [
        'pulumi:',
        '  orgs:',
        '    - name: acme',
        '      include: ["infra/*"]',
        '      exclude: ["*/dev"]',
        '    - name: dropped',
      ].join('\n'),
    });
    const config = loadConfig({ configPath: '/x.yaml', env: { EXPORTER_ORGS: 'globex,acme' }, readFile });
    expect(config.pulumi.orgs).toEqual([
      { name: 'globex', include: [], exclude: [] },
      { name: 'acme', include: ['infra/*'], exclude: ['*/dev'] },
    ]);
  });

  it('returns a deeply frozen config', () => {
    const config = loadConfig({ env: { EXPORTER_ORGS: 'acme' } });
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.pulumi.orgs)).toBe(true);
    expect(Object.isFrozen(config.pulumi.orgs[0]?.include)).toBe(true);
    expect(Object.isFrozen(config.traces.headers)).toBe(true);
  });
});

describe('loadConfig OpenTelemetry variables', () => {
  it('appends /v1/traces to OTEL_EXPORTER_OTLP_ENDPOINT', () => {
    expect(loadConfig({ env: { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' } }).traces.endpoint).toBe(
      'http://collector:4318/v1/traces',
    );
    expect(loadConfig({ env: { OTEL_EXPORTER_OTLP_ENDPOINT: 'https://otlp.example.com/otlp/' } }).traces.endpoint).toBe(
      'https://otlp.example.com/otlp/v1/traces',
    );
  });

  it('uses OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as-is and lets it win over the base endpoint', () => {
    const config = loadConfig({
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318',
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://tempo:4318/custom/path',
      },
    });
    expect(config.traces.endpoint).toBe('http://tempo:4318/custom/path');
  });

  it('decodes header values and merges file, generic and traces-specific headers in that order', () => {
    const readFile = files({ '/x.yaml': 'traces:\n  headers:\n    x-tenant: file\n    x-keep: kept\n' });
    const config = loadConfig({
      configPath: '/x.yaml',
      readFile,
      env: {
        OTEL_EXPORTER_OTLP_HEADERS: 'Authorization=Bearer%20abc%2C123, x-tenant=generic,x-generic=1',
        OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'x-tenant=traces',
      },
    });
    expect(config.traces.headers).toEqual({
      Authorization: 'Bearer abc,123',
      'x-tenant': 'traces',
      'x-keep': 'kept',
      'x-generic': '1',
    });
  });

  it('maps exporter, protocol, timeout and service name, the traces-specific variable winning', () => {
    const config = loadConfig({
      env: {
        OTEL_TRACES_EXPORTER: 'console',
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
        OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json',
        OTEL_EXPORTER_OTLP_TIMEOUT: '5000',
        OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: '7000',
        OTEL_SERVICE_NAME: 'pulumi-prod',
      },
    });
    expect(config.traces.exporter).toBe('console');
    expect(config.traces.protocol).toBe('http/json');
    expect(config.traces.timeoutMillis).toBe(7000);
    expect(config.traces.serviceName).toBe('pulumi-prod');
    expect(loadConfig({ env: { OTEL_EXPORTER_OTLP_TIMEOUT: '5000' } }).traces.timeoutMillis).toBe(5000);
  });

  it('maps OTLP compression, the traces-specific variable winning, and refuses an unsupported one naming the variable', () => {
    expect(loadConfig({ env: {} }).traces.compression).toBe('none');
    expect(loadConfig({ env: { OTEL_EXPORTER_OTLP_COMPRESSION: 'gzip' } }).traces.compression).toBe('gzip');
    expect(loadConfig({ env: { OTEL_EXPORTER_OTLP_COMPRESSION: 'gzip', OTEL_EXPORTER_OTLP_TRACES_COMPRESSION: 'none' } }).traces.compression).toBe('none');
    const err = loadError(() => loadConfig({ env: { OTEL_EXPORTER_OTLP_COMPRESSION: 'br' } }));
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.message).toMatch(/traces\.compression.*\(from OTEL_EXPORTER_OTLP_COMPRESSION\)/);
  });

  it('refuses grpc with a message saying only OTLP over HTTP is supported', () => {
    const err = loadError(() => loadConfig({ env: { OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' } }));
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.message).toMatch(/traces\.protocol: grpc is not supported.*HTTP only.*\(from OTEL_EXPORTER_OTLP_PROTOCOL\)/);
  });

  it('ignores a generic variable shadowed by its signal-specific ones', () => {
    const config = loadConfig({
      env: {
        OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
        OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json',
        OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: 'http/protobuf',
      },
    });
    expect(config.traces.protocol).toBe('http/json');
    expect(config.metricsPush.protocol).toBe('http/protobuf');
  });

  it('applies the generic OTLP variables to the metrics push too, then its own', () => {
    const config = loadConfig({
      env: {
        OTEL_METRICS_EXPORTER: 'otlp',
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/',
        OTEL_EXPORTER_OTLP_HEADERS: 'x-tenant=a,x-api-key=k1',
        OTEL_EXPORTER_OTLP_METRICS_HEADERS: 'x-tenant=b',
        OTEL_EXPORTER_OTLP_METRICS_TIMEOUT: '5000',
        OTEL_EXPORTER_OTLP_COMPRESSION: 'gzip',
        OTEL_METRIC_EXPORT_INTERVAL: '15000',
      },
    });
    expect(config.traces.endpoint).toBe('http://collector:4318/v1/traces');
    expect(config.metricsPush).toEqual({
      exporter: 'otlp',
      endpoint: 'http://collector:4318/v1/metrics',
      protocol: 'http/protobuf',
      headers: { 'x-tenant': 'b', 'x-api-key': 'k1' },
      timeoutMillis: 5000,
      intervalMillis: 15000,
      compression: 'gzip',
    });
    expect(loadConfig({ env: { OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: 'http://m:4318/x' } }).metricsPush.endpoint).toBe('http://m:4318/x');
  });

  it('refuses a push interval shorter than its timeout, naming both keys', () => {
    expect(() =>
      loadConfig({ env: { OTEL_METRICS_EXPORTER: 'otlp', OTEL_METRIC_EXPORT_INTERVAL: '1000', OTEL_EXPORTER_OTLP_METRICS_TIMEOUT: '5000' } }),
    ).toThrow(/metricsPush\.intervalMillis.*metricsPush\.timeoutMillis/s);
    // Off, the same values are harmless (the traces may need a long timeout).
    expect(loadConfig({ env: { OTEL_METRIC_EXPORT_INTERVAL: '1000', OTEL_EXPORTER_OTLP_TIMEOUT: '5000' } }).metricsPush.exporter).toBe('none');
  });
});

describe('loadConfig validation', () => {
  it('reports every problem at once with its key path and the variable or file it came from', () => {
    const readFile = files({
      '/etc/x.yaml': [
        'server:',
        '  prot: 9000',
        'poll:',
        '  intervalSeconds: -1',
        'traces:',
        '  exporter: zipkin',
        'pulumi:',
        '  orgs:',
        '    - name: ""',
      ].join('\n'),
    });
    const err = loadError(() =>
      loadConfig({
        configPath: '/etc/x.yaml',
        readFile,
        env: { EXPORTER_PORT: '70000', EXPORTER_BACKFILL_DAYS: 'seven', EXPORTER_LOG_LEVEL: 'loud' },
      }),
    );
    expect(err).toBeInstanceOf(ConfigValidationError);
    const problems = (err as ConfigValidationError).problems;
    const byPath = Object.fromEntries(problems.map((p) => [p.path, p]));
    expect(Object.keys(byPath).sort()).toEqual(
      [
        'log.level',
        'poll.backfillDays',
        'poll.intervalSeconds',
        'pulumi.orgs[0].name',
        'server.port',
        'server.prot',
        'traces.exporter',
      ].sort(),
    );
    expect(byPath['server.port']?.variable).toBe('EXPORTER_PORT');
    expect(byPath['poll.backfillDays']).toMatchObject({ variable: 'EXPORTER_BACKFILL_DAYS', message: 'must be a number, got "seven"' });
    expect(byPath['log.level']?.variable).toBe('EXPORTER_LOG_LEVEL');
    expect(byPath['server.prot']).toMatchObject({ file: '/etc/x.yaml', message: 'unknown key; did you mean "port"?' });
    expect(byPath['traces.exporter']?.file).toBe('/etc/x.yaml');

    const lines = err.message.split('\n');
    expect(lines[0]).toBe('invalid configuration (7 problems):');
    expect(lines).toContain('  - server.port: Too big: expected number to be <=65535 (from EXPORTER_PORT)');
    expect(lines).toContain('  - server.prot: unknown key; did you mean "port"? (in /etc/x.yaml)');
  });

  it('rejects an unknown key in the YAML, at any depth', () => {
    const readFile = files({ '/x.yaml': 'metrics:\n  resourceOperationDurationByStack: true\nloglevel: debug\n' });
    const err = loadError(() => loadConfig({ configPath: '/x.yaml', env: {}, readFile }));
    expect(err.code).toBe('CONFIG_INVALID');
    expect((err as ConfigValidationError).problems).toEqual([
      { path: 'loglevel', message: 'unknown key', file: '/x.yaml' },
    ]);
  });

  it('names the variable of a non-numeric number instead of crashing', () => {
    const err = loadError(() => loadConfig({ env: { EXPORTER_POLL_INTERVAL_SECONDS: '1m' } }));
    expect(err.message).toContain('poll.intervalSeconds: must be a number, got "1m" (from EXPORTER_POLL_INTERVAL_SECONDS)');
  });

  it('refuses a backend URL with a password, without printing it', () => {
    const err = loadError(() => loadConfig({ env: { PULUMI_BACKEND_URL: 'https://user:p4ssw0rd-secret@api.example.com' } }));
    expect(err.code).toBe('CONFIG_INVALID');
    expect(formatConfigProblems(err)).toContain('PULUMI_BACKEND_URL');
    expect(formatConfigProblems(err)).toContain('PULUMI_ACCESS_TOKEN');
    expect(formatConfigProblems(err)).not.toContain('p4ssw0rd-secret');
  });

  it('reports a duplicated org', () => {
    const err = loadError(() => loadConfig({ env: { EXPORTER_ORGS: 'acme,acme' } }));
    expect(err.message).toContain('pulumi.orgs[1].name: duplicate org "acme" (first at pulumi.orgs[0]) (from EXPORTER_ORGS)');
  });

  it('reports a malformed header entry by position, without its content', () => {
    const err = loadError(() => loadConfig({ env: { OTEL_EXPORTER_OTLP_HEADERS: 'a=1,sekrit-only' } }));
    expect(err.message).toContain('traces.headers: entry 2 is not of the form key=value (from OTEL_EXPORTER_OTLP_HEADERS)');
    expect(err.message).not.toContain('sekrit-only');
  });
});

describe('loadConfig unreadable files', () => {
  it('names the config file that does not exist', () => {
    const err = loadError(() => loadConfig({ configPath: '/nope.yaml', env: {}, readFile: files({}) }));
    expect(err.code).toBe('CONFIG_FILE_UNREADABLE');
    expect(err.message).toBe('cannot read config file /nope.yaml: ENOENT');
  });

  it('names the file and position of invalid YAML without quoting its lines', () => {
    const readFile = files({ '/bad.yaml': `pulumi:\n  accessToken: "${TOKEN}\n` });
    const err = loadError(() => loadConfig({ configPath: '/bad.yaml', env: {}, readFile }));
    expect(err.code).toBe('CONFIG_FILE_UNREADABLE');
    expect(err.message).toMatch(/^cannot parse config file \/bad\.yaml as YAML: .*line \d+, column \d+/);
    expect(err.message).not.toContain(TOKEN);
  });

  it('rejects a file whose top level is not a mapping', () => {
    const err = loadError(() => loadConfig({ configPath: '/l.yaml', env: {}, readFile: files({ '/l.yaml': '- a\n- b\n' }) }));
    expect(err.code).toBe('CONFIG_FILE_UNREADABLE');
    expect(err.message).toContain('/l.yaml must hold a mapping');
  });

  it('names the *_FILE variable and its path when the secret file cannot be read', () => {
    const err = loadError(() =>
      loadConfig({ env: { PULUMI_ACCESS_TOKEN_FILE: '/run/missing' }, readFile: files({}) }),
    );
    expect(err.code).toBe('CONFIG_FILE_UNREADABLE');
    expect(err.message).toBe('cannot read PULUMI_ACCESS_TOKEN_FILE=/run/missing: ENOENT');
  });

  it('reports an empty secret file as a problem of the token key', () => {
    const err = loadError(() =>
      loadConfig({ env: { PULUMI_ACCESS_TOKEN_FILE: '/run/t' }, readFile: files({ '/run/t': '\n' }) }),
    );
    expect(err.message).toContain('pulumi.accessToken: the file /run/t is empty (from PULUMI_ACCESS_TOKEN_FILE)');
  });
});

describe('loadConfig secrets', () => {
  it('never puts the token in a message, even when an invalid value contains it', () => {
    const err = loadError(() =>
      loadConfig({
        env: { PULUMI_ACCESS_TOKEN: TOKEN, EXPORTER_PORT: `${TOKEN}` },
      }),
    );
    expect(err.message).toContain('server.port: must be a number');
    expect(err.message).not.toContain(TOKEN);
    expect(formatConfigProblems(err)).not.toContain(TOKEN);
  });

  it('registers the token from the secret file and the OTLP header values as secrets', () => {
    loadConfig({
      env: { PULUMI_ACCESS_TOKEN_FILE: '/t', OTEL_EXPORTER_OTLP_HEADERS: 'x-api-key=key%3D12345' },
      readFile: files({ '/t': TOKEN }),
    });
    expect(redact(`token ${TOKEN} and key=12345`)).toBe('token [REDACTED] and [REDACTED]');
  });

  it('leaves a short value of an ordinary header unregistered so common words stay readable in logs', () => {
    loadConfig({ env: { OTEL_EXPORTER_OTLP_HEADERS: 'x-scope-orgid=platform,x-tenant=0123456789abcdef0' } });
    expect(redact('acme-platform')).toBe('acme-platform');
    expect(redact('0123456789abcdef0')).toBe('[REDACTED]');
  });

  it('registers credential-like metrics push headers written in the config file', () => {
    const key = 'metrics-key-7f3a9c1e5b';
    loadConfig({ configPath: '/x.yaml', env: {}, readFile: files({ '/x.yaml': `metricsPush:\n  headers:\n    x-api-key: ${key}\n` }) });
    expect(redact(`sent ${key}`)).toBe('sent [REDACTED]');
  });

  it('registers a token written in the config file too', () => {
    const fileToken = 'pul-from-the-file-000000';
    loadConfig({ configPath: '/x.yaml', env: {}, readFile: files({ '/x.yaml': `pulumi:\n  accessToken: ${fileToken}\n` }) });
    expect(redact(fileToken)).toBe('[REDACTED]');
  });
});

describe('formatConfigProblems', () => {
  it('prefixes the error code and keeps one problem a line', () => {
    const err = loadError(() => loadConfig({ env: { EXPORTER_PORT: 'x', EXPORTER_LOG_LEVEL: 'loud' } }));
    const text = formatConfigProblems(err);
    expect(text.split('\n')).toHaveLength(3);
    expect(text.startsWith('CONFIG_INVALID: invalid configuration (2 problems):')).toBe(true);
  });

  it('formats an unexpected error as INTERNAL', () => {
    expect(formatConfigProblems(new TypeError('boom'))).toBe('INTERNAL: boom');
  });
});
