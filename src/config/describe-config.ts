import { REDACTED } from '../secrets.js';
import { describePostgresUrl, isPostgresUrl } from '../state/postgres-url.js';
import type { Config } from './schema.js';

/** Hides a password in `https://user:password@host/` URLs; other URLs are returned unchanged. */
function redactUrlPassword(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password === '') return url;
    return `${parsed.protocol}//${parsed.username}:${REDACTED}@${parsed.host}${parsed.pathname}${parsed.search}${parsed.hash}`;
  } catch {
    return url;
  }
}

/**
 * A copy of the config that is safe to log or print: the access token becomes
 * `[REDACTED]` when set, every OTLP header value is redacted (they often carry API keys),
 * and passwords embedded in URLs are hidden.
 */
export function describeConfig(config: Config): Config {
  const copy = structuredClone(config) as Config;
  if (copy.pulumi.accessToken !== '') copy.pulumi.accessToken = REDACTED;
  copy.pulumi.backendUrl = redactUrlPassword(copy.pulumi.backendUrl);
  copy.traces.endpoint = redactUrlPassword(copy.traces.endpoint);
  if (isPostgresUrl(copy.state.path)) copy.state.path = describePostgresUrl(copy.state.path);
  copy.traces.headers = Object.fromEntries(Object.keys(copy.traces.headers).map((name) => [name, REDACTED]));
  return copy;
}
