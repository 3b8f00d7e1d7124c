import { expect } from 'vitest';
import { ExporterError } from '../../src/errors.js';
import type { ApiObserver } from '../../src/pulumi/api-observer.js';
import type { EventsPage } from '../../src/pulumi/pulumi-api.js';

/** Awaits `p`, asserts it rejects with an ExporterError and returns that error. */
export async function rejection(p: Promise<unknown>): Promise<ExporterError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(ExporterError);
    return err as ExporterError;
  }
  throw new Error('expected a rejection');
}

/** Drains an engine-events iterator into an array of its pages. */
export async function collect(it: AsyncIterable<EventsPage>): Promise<EventsPage[]> {
  const pages: EventsPage[] = [];
  for await (const p of it) pages.push(p);
  return pages;
}

export type RecordingObserver = ApiObserver & { requests: string[]; retries: string[] };

/** An ApiObserver recording each request as `endpoint:code` and each retry as `endpoint:reason`. */
export function recordingObserver(): RecordingObserver {
  const requests: string[] = [];
  const retries: string[] = [];
  return {
    requests,
    retries,
    request: (endpoint, code) => requests.push(`${endpoint}:${code}`),
    retry: (endpoint, reason) => retries.push(`${endpoint}:${reason}`),
  };
}
