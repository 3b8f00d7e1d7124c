import type { ConfigProblem } from './config-problem.js';
import { isSecretHeader } from './secret-header.js';

/** How a variable's text becomes a config value. */
type EnvKind =
  | 'config-path'
  | 'string'
  | 'number'
  | 'orgs'
  | 'headers'
  | 'protocol'
  | 'otlp-base-endpoint'
  | 'otlp-base-metrics-endpoint'
  | 'secret-file';

export interface EnvVarBinding {
  readonly name: string;
  /** Dotted config key it sets; empty for EXPORTER_CONFIG, which selects the file. */
  readonly key: string;
  readonly kind: EnvKind;
}

/**
 * Every environment variable the loader reads, in precedence order: when two set the
 * same key, the later one wins (the signal-specific OTEL_EXPORTER_OTLP_TRACES_* after
 * the generic OTEL_EXPORTER_OTLP_*). docs/configuration.md lists each one (a test checks).
 */
export const ENV_VARS: readonly EnvVarBinding[] = [
  { name: 'EXPORTER_CONFIG', key: '', kind: 'config-path' },
  { name: 'PULUMI_ACCESS_TOKEN', key: 'pulumi.accessToken', kind: 'string' },
  { name: 'PULUMI_ACCESS_TOKEN_FILE', key: 'pulumi.accessToken', kind: 'secret-file' },
  { name: 'PULUMI_BACKEND_URL', key: 'pulumi.backendUrl', kind: 'string' },
  { name: 'EXPORTER_ORGS', key: 'pulumi.orgs', kind: 'orgs' },
  { name: 'EXPORTER_HOST', key: 'server.host', kind: 'string' },
  { name: 'EXPORTER_PORT', key: 'server.port', kind: 'number' },
  { name: 'EXPORTER_STATE', key: 'state.path', kind: 'string' },
  { name: 'EXPORTER_STATE_FILE', key: 'state.path', kind: 'secret-file' },
  { name: 'EXPORTER_STATE_LEASE_SECONDS', key: 'state.leaseSeconds', kind: 'number' },
  { name: 'EXPORTER_POLL_INTERVAL_SECONDS', key: 'poll.intervalSeconds', kind: 'number' },
  { name: 'EXPORTER_FOLLOW_INTERVAL_SECONDS', key: 'poll.followIntervalSeconds', kind: 'number' },
  { name: 'EXPORTER_BACKFILL_DAYS', key: 'poll.backfillDays', kind: 'number' },
  { name: 'EXPORTER_LOG_LEVEL', key: 'log.level', kind: 'string' },
  { name: 'OTEL_TRACES_EXPORTER', key: 'traces.exporter', kind: 'string' },
  { name: 'OTEL_EXPORTER_OTLP_ENDPOINT', key: 'traces.endpoint', kind: 'otlp-base-endpoint' },
  { name: 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', key: 'traces.endpoint', kind: 'string' },
  { name: 'OTEL_EXPORTER_OTLP_HEADERS', key: 'traces.headers', kind: 'headers' },
  { name: 'OTEL_EXPORTER_OTLP_TRACES_HEADERS', key: 'traces.headers', kind: 'headers' },
  { name: 'OTEL_EXPORTER_OTLP_PROTOCOL', key: 'traces.protocol', kind: 'protocol' },
  { name: 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', key: 'traces.protocol', kind: 'protocol' },
  { name: 'OTEL_EXPORTER_OTLP_TIMEOUT', key: 'traces.timeoutMillis', kind: 'number' },
  { name: 'OTEL_EXPORTER_OTLP_TRACES_TIMEOUT', key: 'traces.timeoutMillis', kind: 'number' },
  { name: 'OTEL_SERVICE_NAME', key: 'traces.serviceName', kind: 'string' },
  { name: 'OTEL_EXPORTER_OTLP_COMPRESSION', key: 'traces.compression', kind: 'string' },
  { name: 'OTEL_EXPORTER_OTLP_TRACES_COMPRESSION', key: 'traces.compression', kind: 'string' },
  { name: 'EXPORTER_TRACE_LINK_TEMPLATE', key: 'traces.linkTemplate', kind: 'string' },
  { name: 'EXPORTER_SELF_TRACES_ENDPOINT', key: 'selfTelemetry.tracesEndpoint', kind: 'string' },
  // The metrics push reads the same generic OTLP variables, then its signal-specific ones.
  { name: 'OTEL_METRICS_EXPORTER', key: 'metricsPush.exporter', kind: 'string' },
  { name: 'OTEL_EXPORTER_OTLP_ENDPOINT', key: 'metricsPush.endpoint', kind: 'otlp-base-metrics-endpoint' },
  { name: 'OTEL_EXPORTER_OTLP_METRICS_ENDPOINT', key: 'metricsPush.endpoint', kind: 'string' },
  { name: 'OTEL_EXPORTER_OTLP_HEADERS', key: 'metricsPush.headers', kind: 'headers' },
  { name: 'OTEL_EXPORTER_OTLP_METRICS_HEADERS', key: 'metricsPush.headers', kind: 'headers' },
  { name: 'OTEL_EXPORTER_OTLP_PROTOCOL', key: 'metricsPush.protocol', kind: 'protocol' },
  { name: 'OTEL_EXPORTER_OTLP_METRICS_PROTOCOL', key: 'metricsPush.protocol', kind: 'protocol' },
  { name: 'OTEL_EXPORTER_OTLP_TIMEOUT', key: 'metricsPush.timeoutMillis', kind: 'number' },
  { name: 'OTEL_EXPORTER_OTLP_METRICS_TIMEOUT', key: 'metricsPush.timeoutMillis', kind: 'number' },
  { name: 'OTEL_EXPORTER_OTLP_COMPRESSION', key: 'metricsPush.compression', kind: 'string' },
  { name: 'OTEL_EXPORTER_OTLP_METRICS_COMPRESSION', key: 'metricsPush.compression', kind: 'string' },
  { name: 'OTEL_METRIC_EXPORT_INTERVAL', key: 'metricsPush.intervalMillis', kind: 'number' },
];

export type ConfigPath = readonly (string | number)[];

/** Values taken from the environment, before merging over the file. */
export interface EnvLayer {
  /** A partial config object (no arrays: orgs come separately so the file's include/exclude survive). */
  readonly values: Record<string, unknown>;
  /** EXPORTER_ORGS, split and trimmed; undefined when unset. */
  readonly orgNames: readonly string[] | undefined;
  /** Which variable set which key, for naming it in problems. */
  readonly sources: readonly { readonly path: ConfigPath; readonly variable: string }[];
  readonly problems: readonly ConfigProblem[];
  /** Values that must never be printed (the token, credential-like OTLP header values). */
  readonly secrets: readonly string[];
  /** `*_FILE` variables to read after the environment layer: key path and file path. */
  readonly secretFiles: readonly { readonly path: ConfigPath; readonly variable: string; readonly file: string }[];
  readonly configPath: string | undefined;
}

const NUMBER = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

/** Empty values count as unset, as the OpenTelemetry environment specification asks. */
function read(env: Readonly<Record<string, string | undefined>>, name: string): string | undefined {
  const value = env[name];
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  return trimmed === '' ? undefined : trimmed;
}

function setPath(target: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let node = target;
  path.forEach((segment, index) => {
    if (index === path.length - 1) {
      node[segment] = value;
      return;
    }
    const next = node[segment];
    if (typeof next === 'object' && next !== null && !Array.isArray(next)) {
      node = next as Record<string, unknown>;
    } else {
      const created: Record<string, unknown> = {};
      node[segment] = created;
      node = created;
    }
  });
}

function getPath(target: Record<string, unknown>, path: readonly string[]): unknown {
  let node: unknown = target;
  for (const segment of path) {
    if (typeof node !== 'object' || node === null) return undefined;
    node = (node as Record<string, unknown>)[segment];
  }
  return node;
}

/**
 * Parses `k=v,k2=v2` (the OTLP headers format); values are URL-decoded. A malformed entry
 * is reported by position only, because header values often carry API keys.
 */
function parseHeaders(
  name: string,
  raw: string,
  problems: ConfigProblem[],
  key: string,
): Record<string, string> {
  const headers: Record<string, string> = {};
  raw.split(',').forEach((entry, index) => {
    if (entry.trim() === '') return;
    const eq = entry.indexOf('=');
    const headerName = eq < 0 ? '' : entry.slice(0, eq).trim();
    if (headerName === '') {
      problems.push({
        path: key,
        variable: name,
        message: `entry ${index + 1} is not of the form key=value`,
      });
      return;
    }
    const encoded = entry.slice(eq + 1).trim();
    try {
      headers[headerName] = decodeURIComponent(encoded);
    } catch {
      problems.push({
        path: `${key}.${headerName}`,
        variable: name,
        message: `the value of header "${headerName}" is not valid URL encoding`,
      });
    }
  });
  return headers;
}

/** Joins an OTLP base endpoint and the traces path the way the OpenTelemetry SDKs do. */
export function tracesEndpointFromBase(base: string): string {
  return `${base.replace(/\/+$/, '')}/v1/traces`;
}

/** Joins an OTLP base endpoint and the metrics path the way the OpenTelemetry SDKs do. */
function metricsEndpointFromBase(base: string): string {
  return `${base.replace(/\/+$/, '')}/v1/metrics`;
}

export function readEnvLayer(env: Readonly<Record<string, string | undefined>>): EnvLayer {
  const values: Record<string, unknown> = {};
  const sources: { path: ConfigPath; variable: string }[] = [];
  const problems: ConfigProblem[] = [];
  const secrets: string[] = [];
  const secretFiles: { path: ConfigPath; variable: string; file: string }[] = [];
  let orgNames: string[] | undefined;
  let configPath: string | undefined;

  ENV_VARS.forEach((binding, position) => {
    const raw = read(env, binding.name);
    if (raw === undefined) return;
    // A later variable for the same key wins outright (headers merge instead), so a
    // shadowed value is neither used nor reported as a problem.
    const shadowed =
      binding.kind !== 'headers' &&
      ENV_VARS.slice(position + 1).some((later) => later.key === binding.key && read(env, later.name) !== undefined);
    if (shadowed) {
      if (binding.key === 'pulumi.accessToken') secrets.push(raw);
      return;
    }
    const path = binding.key === '' ? [] : binding.key.split('.');
    const set = (value: unknown): void => {
      setPath(values, path, value);
      sources.push({ path, variable: binding.name });
    };
    switch (binding.kind) {
      case 'config-path':
        configPath = raw;
        break;
      case 'string':
        set(raw);
        if (binding.key === 'pulumi.accessToken') secrets.push(raw);
        break;
      case 'number':
        if (NUMBER.test(raw)) set(Number(raw));
        else problems.push({ path: binding.key, variable: binding.name, message: `must be a number, got "${raw}"` });
        break;
      case 'orgs':
        orgNames = raw
          .split(',')
          .map((name) => name.trim())
          .filter((name) => name !== '');
        orgNames.forEach((_name, index) => {
          sources.push({ path: [...path, index, 'name'], variable: binding.name });
        });
        break;
      case 'headers': {
        const parsed = parseHeaders(binding.name, raw, problems, binding.key);
        const existing = getPath(values, path);
        const merged = { ...(typeof existing === 'object' && existing !== null ? existing : {}), ...parsed };
        setPath(values, path, merged);
        for (const [headerName, headerValue] of Object.entries(parsed)) {
          sources.push({ path: [...path, headerName], variable: binding.name });
          if (isSecretHeader(headerName, headerValue)) secrets.push(headerValue);
        }
        break;
      }
      case 'protocol':
        if (raw.toLowerCase() === 'grpc') {
          problems.push({
            path: binding.key,
            variable: binding.name,
            message: 'grpc is not supported: this exporter sends OTLP over HTTP only; use http/protobuf (the default) or http/json',
          });
        } else {
          set(raw);
        }
        break;
      case 'otlp-base-endpoint':
        set(tracesEndpointFromBase(raw));
        break;
      case 'otlp-base-metrics-endpoint':
        set(metricsEndpointFromBase(raw));
        break;
      case 'secret-file':
        secretFiles.push({ path, variable: binding.name, file: raw });
        break;
    }
  });
  return { values, orgNames, sources, problems, secrets, secretFiles, configPath };
}
