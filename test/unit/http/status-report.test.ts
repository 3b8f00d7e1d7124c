import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { traceIdFor } from '../../../src/conversion/trace-ids.js';
import type { StackRef } from '../../../src/domain/stack.js';
import { buildStatusReport, type StatusSources } from '../../../src/http/status-report.js';
import { formatDuration, renderStatusPage } from '../../../src/http/status-page.js';
import { SqliteStateStore } from '../../../src/state/sqlite-store.js';
import type { ExportedUpdate } from '../../../src/state/state-store.js';

const T0 = 1_700_000_000;
const WEB: StackRef = { org: 'acme', project: 'web', stack: 'prod' };
const API: StackRef = { org: 'acme', project: 'api', stack: 'dev' };
const OPS: StackRef = { org: 'globex', project: 'ops', stack: 'main' };

let store: SqliteStateStore;

beforeEach(async () => {
  store = new SqliteStateStore({ path: ':memory:' });
  await store.migrate();
});
afterEach(() => store.close());

function done(stack: StackRef, updateId: string, version: number, kind: string, result: string, start: number, end: number): ExportedUpdate {
  return { stack, updateId, kind, version, result, startTime: T0 + start, endTime: T0 + end };
}

async function seed(): Promise<void> {
  await store.replaceOrgStacks('acme', [WEB, API], T0 * 1000);
  await store.replaceOrgStacks('globex', [OPS], T0 * 1000);
  for (const u of [
    done(WEB, 'w1', 1, 'update', 'succeeded', 0, 90),
    done(WEB, 'w2', 2, 'update', 'failed', 100, 130),
    // A later preview does not make a failing stack healthy.
    done(WEB, 'w3', 3, 'preview', 'succeeded', 200, 210),
    done(API, 'a1', 1, 'update', 'failed', 0, 50),
    done(API, 'a2', 2, 'refresh', 'succeeded', 300, 320),
    done(OPS, 'o1', 1, 'destroy', 'cancelled', 400, 460),
  ]) {
    await store.commitUpdate({ update: u, deltas: { counters: [], histograms: [] }, exportedAtMs: (T0 + 500) * 1000 });
  }
  await store.setInProgress(OPS, [{ stack: OPS, updateId: 'o2', kind: 'update', version: 2, startTime: T0 + 600 }]);
}

function sources(overrides: Partial<StatusSources> = {}): StatusSources {
  return { store, version: '9.9.9', ready: true, orgs: ['acme', 'globex'], nowMs: (T0 + 4200) * 1000, consoleUrl: 'https://app.pulumi.com', recentLimit: 10, ...overrides };
}

describe('buildStatusReport', () => {
  it('lists recent updates newest first with their trace id, trace link and console link', async () => {
    await seed();
    const report = await buildStatusReport(sources({ traceLinkTemplate: 'http://jaeger:16686/trace/{traceId}', recentLimit: 3 }));
    expect(report.recentUpdates.map((u) => u.updateId)).toEqual(['o1', 'a2', 'w3']);
    const [o1] = report.recentUpdates;
    const traceId = traceIdFor(OPS, 'o1');
    expect(o1).toEqual({
      ...OPS,
      updateId: 'o1',
      version: 1,
      kind: 'destroy',
      result: 'cancelled',
      startedAt: new Date((T0 + 400) * 1000).toISOString(),
      endedAt: new Date((T0 + 460) * 1000).toISOString(),
      durationSeconds: 60,
      traceId,
      traceUrl: `http://jaeger:16686/trace/${traceId}`,
      consoleUrl: 'https://app.pulumi.com/globex/ops/main/updates/1',
    });
    expect(report.recentUpdates[2]?.consoleUrl).toBe(`https://app.pulumi.com/acme/web/prod/previews/w3`);
  });

  it('has no trace links without a template', async () => {
    await seed();
    const report = await buildStatusReport(sources());
    expect(report.recentUpdates.every((u) => u.traceUrl === undefined && /^[0-9a-f]{32}$/.test(u.traceId))).toBe(true);
  });

  it('names stacks whose newest non-preview update did not succeed, and counts per org', async () => {
    await seed();
    const report = await buildStatusReport(sources({ orgListingErrors: new Map([['initech', 'API_UNAUTHORIZED']]) }));
    expect(report.failingStacks.map((s) => [`${s.org}/${s.project}/${s.stack}`, s.kind, s.result])).toEqual([
      ['globex/ops/main', 'destroy', 'cancelled'],
      ['acme/web/prod', 'update', 'failed'],
    ]);
    expect(report.orgs).toEqual([
      { org: 'acme', stacksWatched: 2, inProgress: 0, failingStacks: 1 },
      { org: 'globex', stacksWatched: 1, inProgress: 1, failingStacks: 1 },
      { org: 'initech', stacksWatched: 0, inProgress: 0, failingStacks: 0, listingError: 'API_UNAUTHORIZED' },
    ]);
  });

  it('shows running updates with how long they have been running', async () => {
    await seed();
    const report = await buildStatusReport(sources());
    expect(report.inProgress).toEqual([
      expect.objectContaining({ ...OPS, updateId: 'o2', kind: 'update', version: 2, runningSeconds: 3600, consoleUrl: 'https://app.pulumi.com/globex/ops/main/updates/2' }),
    ]);
  });

  it('leaves out stacks no longer listed', async () => {
    await seed();
    await store.replaceOrgStacks('globex', [], (T0 + 700) * 1000);
    const report = await buildStatusReport(sources());
    expect(report.inProgress).toEqual([]);
    expect(report.failingStacks.map((s) => s.org)).toEqual(['acme']);
    expect(report.orgs.map((o) => [o.org, o.stacksWatched])).toEqual([['acme', 2], ['globex', 0]]);
  });

  it('rejects when the store fails, so the page answers 500 rather than an empty status', async () => {
    await store.close();
    await expect(buildStatusReport(sources())).rejects.toThrow();
  });
});

describe('renderStatusPage', () => {
  it('links only http(s) URLs and shows anything else as text', async () => {
    await seed();
    const report = await buildStatusReport(sources({ traceLinkTemplate: 'https://tempo.example/explore?trace={traceId}' }));
    const html = renderStatusPage({ ...report, recentUpdates: report.recentUpdates.map((u, i) => (i === 0 ? { ...u, consoleUrl: 'javascript:alert(1)' } : u)) });
    expect(html).not.toContain('href="javascript:');
    expect(html).toContain(`href="https://tempo.example/explore?trace=${traceIdFor(WEB, 'w3')}"`);
  });

  it.each([
    [0, '0s'],
    [59.4, '59s'],
    [61, '1m 1s'],
    [3_725, '1h 2m'],
    [3 * 86_400 + 7_200, '3d 2h'],
    [Number.NaN, '?'],
  ])('formats %s seconds as %s', (seconds, text) => {
    expect(formatDuration(seconds)).toBe(text);
  });
});
