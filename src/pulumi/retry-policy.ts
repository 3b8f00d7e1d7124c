/**
 * Backoff arithmetic of the Pulumi client: pure functions so the bounds can be tested
 * without a server.
 */

/** HTTP statuses that are retried (shared pulumi-api.md section 1, shared architecture.md rule 8). */
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
 * What to do after a retryable failure: wait `delayMs` and try again, or `defer` to the
 * next poll cycle because the server asked (Retry-After) for a longer wait than one retry
 * may take. Retrying earlier than asked would only burn attempts while still limited.
 */
export type RetryPlan =
  | { readonly kind: 'wait'; readonly delayMs: number }
  | { readonly kind: 'defer'; readonly retryAfterMs: number };

/**
 * The jittered backoff, but never less than Retry-After; a Retry-After above `maxMs`
 * defers instead of being shortened to the cap.
 */
export function planRetry(
  retry: number,
  retryAfterMs: number | undefined,
  baseMs: number,
  maxMs: number,
  random: () => number,
): RetryPlan {
  if (retryAfterMs !== undefined && retryAfterMs > maxMs) return { kind: 'defer', retryAfterMs };
  const backoff = backoffDelayMillis(retry, baseMs, maxMs, random);
  return { kind: 'wait', delayMs: Math.max(backoff, retryAfterMs ?? 0) };
}
