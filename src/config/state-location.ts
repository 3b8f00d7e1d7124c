import { isPostgresUrl } from '../state/postgres-url.js';

/** `scheme://...`: a URL, never a file name an operator means. */
const URL_SHAPED = /^[a-z][a-z0-9+.-]*:\/\//i;

/**
 * Why `state.path` cannot be used, or undefined when it can. A URL is not taken as a file
 * name (that created a SQLite file named after the URL, password included). The message
 * never repeats the value, which may carry a password. postgres:// and postgresql:// select
 * the PostgreSQL store.
 */
export function stateLocationProblem(value: string): string | undefined {
  if (isPostgresUrl(value)) return undefined;
  if (URL_SHAPED.test(value)) {
    const scheme = value.slice(0, value.indexOf(':')).toLowerCase();
    return `must be a SQLite file path (or :memory:) or a postgres:// URL, not a ${scheme}:// URL`;
  }
  return undefined;
}
