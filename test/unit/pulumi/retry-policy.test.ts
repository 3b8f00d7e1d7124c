import { describe, expect, it } from 'vitest';
import { backoffDelayMillis, parseRetryAfterMillis, planRetry } from '../../../src/pulumi/retry-policy.js';

function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe('backoffDelayMillis', () => {
  it('doubles the ceiling per retry up to the cap', () => {
    const almostOne = () => 0.999999;
    const ceilings = [1, 2, 3, 4, 5, 6, 7].map((n) => backoffDelayMillis(n, 100, 2_000, almostOne));
    expect(ceilings).toEqual([99, 199, 399, 799, 1599, 1999, 1999]);
  });

  it('keeps every jittered delay within [0, ceiling) and actually spreads them', () => {
    const random = seeded(42);
    for (let retry = 1; retry <= 6; retry += 1) {
      const ceiling = Math.min(5_000, 250 * 2 ** (retry - 1));
      const delays = Array.from({ length: 200 }, () => backoffDelayMillis(retry, 250, 5_000, random));
      for (const d of delays) {
        expect(d).toBeGreaterThanOrEqual(0);
        expect(d).toBeLessThan(ceiling);
      }
      expect(new Set(delays).size).toBeGreaterThan(50);
      expect(Math.min(...delays)).toBeLessThan(ceiling / 4);
      expect(Math.max(...delays)).toBeGreaterThan((ceiling * 3) / 4);
    }
  });

  it('is zero when the jitter draws zero', () => {
    expect(backoffDelayMillis(3, 1_000, 30_000, () => 0)).toBe(0);
  });
});

describe('parseRetryAfterMillis', () => {
  const now = Date.UTC(2025, 0, 1, 12, 0, 0);

  it('reads integer seconds', () => {
    expect(parseRetryAfterMillis('7', now)).toBe(7_000);
    expect(parseRetryAfterMillis(' 0 ', now)).toBe(0);
  });

  it('reads an HTTP date relative to now and never goes negative', () => {
    expect(parseRetryAfterMillis(new Date(now + 12_000).toUTCString(), now)).toBe(12_000);
    expect(parseRetryAfterMillis(new Date(now - 60_000).toUTCString(), now)).toBe(0);
  });

  it('ignores an absent or unparseable header', () => {
    expect(parseRetryAfterMillis(null, now)).toBeUndefined();
    expect(parseRetryAfterMillis('', now)).toBeUndefined();
    expect(parseRetryAfterMillis('soon', now)).toBeUndefined();
    expect(parseRetryAfterMillis('-3', now)).toBeUndefined();
  });
});

describe('planRetry', () => {
  it('waits the jittered backoff when there is no Retry-After', () => {
    expect(planRetry(3, undefined, 1_000, 30_000, () => 0.5)).toEqual({ kind: 'wait', delayMs: 2_000 });
  });

  it('waits at least what Retry-After asks for', () => {
    expect(planRetry(1, 4_000, 100, 30_000, () => 0.5)).toEqual({ kind: 'wait', delayMs: 4_000 });
  });

  it('uses the backoff when it is longer than Retry-After', () => {
    expect(planRetry(4, 0, 1_000, 30_000, () => 0.5)).toEqual({ kind: 'wait', delayMs: 4_000 });
  });

  it('waits a Retry-After exactly at the maximum delay in full', () => {
    expect(planRetry(1, 30_000, 100, 30_000, () => 0.5)).toEqual({ kind: 'wait', delayMs: 30_000 });
  });

  it('defers instead of retrying early when Retry-After is longer than the maximum delay', () => {
    expect(planRetry(1, 30_001, 100, 30_000, () => 0.5)).toEqual({ kind: 'defer', retryAfterMs: 30_001 });
    expect(planRetry(2, 3_600_000, 100, 30_000, () => 0.5)).toEqual({ kind: 'defer', retryAfterMs: 3_600_000 });
  });

  it('never plans a wait shorter than Retry-After for any jitter draw', () => {
    const random = seeded(7);
    for (let i = 0; i < 500; i += 1) {
      const retryAfter = Math.floor(random() * 40_000);
      const plan = planRetry(1 + (i % 6), retryAfter, 250, 30_000, random);
      if (retryAfter > 30_000) expect(plan).toEqual({ kind: 'defer', retryAfterMs: retryAfter });
      else if (plan.kind === 'wait') expect(plan.delayMs).toBeGreaterThanOrEqual(retryAfter);
      else throw new Error(`deferred a Retry-After of ${retryAfter} ms within the cap`);
    }
  });
});
