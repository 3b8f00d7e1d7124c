import { REDACTED, redactUrlCredentials } from '../secrets.js';
import { describePostgresUrl, isPostgresUrl } from '../state/postgres-url.js';
import type { Config } from './schema.js';

/**
 * A copy of the config that is safe to log or print: the access token becomes
 * `[REDACTED]` when set, every OTLP header value is redacted (they often carry API keys),
 * and passwords embedded in URL-valued settings (backend, OTLP endpoints, state) are hidden.
 */
export function describeConfig(config: Config): Config {
  const copy = structuredClone(config) as Config;
  if (copy.pulumi.accessToken !== '') copy.pulumi.accessToken = REDACTED;
  copy.pulumi.backendUrl = redactUrlCredentials(copy.pulumi.backendUrl);
  copy.traces.endpoint = redactUrlCredentials(copy.traces.endpoint);
  copy.metricsPush.endpoint = redactUrlCredentials(copy.metricsPush.endpoint);
  copy.state.path = isPostgresUrl(copy.state.path) ? describePostgresUrl(copy.state.path) : redactUrlCredentials(copy.state.path);
  copy.traces.headers = Object.fromEntries(Object.keys(copy.traces.headers).map((name) => [name, REDACTED]));
  copy.metricsPush.headers = Object.fromEntries(Object.keys(copy.metricsPush.headers).map((name) => [name, REDACTED]));
  return copy;
}
