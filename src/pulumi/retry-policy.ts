/**
 * Backoff arithmetic of the Pulumi client: pure functions so the bounds can be tested
 * without a server.
 */

/** HTTP statuses that are retried (pulumi-api.md section 1, architecture rule 8). */
export const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([429, 500, 502, 503, 504]);

/**
 * Exponential backoff with full jitter: a uniform delay in [0, min(maxMs, baseMs * 2^(retry-1))).
 * `retry` counts from 1 (the wait before the second attempt).
 */
export function backoffDelayMillis(retry: number, baseMs: number, maxMs: number, random: () => number): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, retry - 1));
  return Math.floor(random() * ceiling);
}

/**
 * Milliseconds a `Retry-After` header asks for: integer seconds or an HTTP date
 * (relative to `nowMs`). Undefined when absent or unparseable; never negative.
 */
export function parseRetryAfterMillis(value: string | null | undefined, nowMs: number): number | undefined {
  if (value === null || value === undefined) return undefined;
  const v = value.trim();
  if (v === '') return undefined;
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  // Date.parse accepts bare numbers such as "-3" as years; an HTTP date names a month.
  if (!/[A-Za-z]{3}/.test(v)) return undefined;
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - nowMs);
}

/**
 * The wait before the next attempt: the jittered backoff, but at least what Retry-After
 * asked for; both capped at `maxMs`.
 */
export function retryDelayMillis(
  retry: number,
  retryAfterMs: number | undefined,
  baseMs: number,
  maxMs: number,
  random: () => number,
): number {
  const backoff = backoffDelayMillis(retry, baseMs, maxMs, random);
  if (retryAfterMs === undefined) return backoff;
  return Math.max(backoff, Math.min(retryAfterMs, maxMs));
}
