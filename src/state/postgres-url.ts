import { REDACTED, registerSecret, registerUrlPassword } from '../secrets.js';

/** True for the state.path values that select the PostgreSQL store. */
export function isPostgresUrl(value: string): boolean {
  return /^postgres(?:ql)?:\/\//i.test(value);
}

/**
 * The URL with its password replaced by [REDACTED] (query parameters such as sslmode are
 * kept; a `password` parameter is hidden too), for logs, errors and `validate` output.
 */
export function describePostgresUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'postgres://(unparsable URL)';
  }
  if (parsed.password !== '') parsed.password = REDACTED;
  if (parsed.searchParams.has('password')) parsed.searchParams.set('password', REDACTED);
  return decodeURIComponent(parsed.toString());
}

/**
 * Registers the URL's password (as every URL-valued setting's is), a `password` query
 * parameter and PGPASSWORD as secrets, so redact() removes them from any log line or error
 * message that quotes them by accident.
 */
export function registerPostgresSecrets(url: string, env: Readonly<Record<string, string | undefined>> = process.env): void {
  registerUrlPassword(url);
  // An unparsable URL is reported by the driver; there is no password to find in it.
  if (URL.canParse(url)) registerSecret(new URL(url).searchParams.get('password') ?? undefined);
  registerSecret(env['PGPASSWORD']);
}
