import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findPackageRoot } from '../../../src/simulator/package-root.js';
import { startSimulator, type RunningSimulator } from '../../../src/simulator/simulator.js';
import type { TruthStack } from '../../../src/simulator/simulator-truth.js';
import { fixtureNames, loadFixtureRaw } from '../../helpers/fixtures.js';
import { allEvents, getJson, stackPath } from './http.js';

/** What `GET .../events` must return for a fixture file: no sequence, no cancelEvent, a `type` key. */
function expectedEvents(name: string): Array<Record<string, unknown>> {
  return loadFixtureRaw(name)
    .filter((e) => e['cancelEvent'] === undefined)
    .map((e) => {
      const { sequence: _sequence, ...rest } = e;
      const key = Object.keys(rest).find((k) => k !== 'timestamp');
      return { ...rest, type: key };
    });
}

let sim: RunningSimulator;
let fixture: TruthStack;

beforeAll(async () => {
  sim = await startSimulator({ seed: 1, nowSeconds: 1_750_000_000, eventPageSize: 7 });
  const found = sim.truth().stacks.find((s) => s.project === 'pulumi-samples' && s.stack === 'fixtures');
  if (!found) throw new Error('no fixture stack');
  fixture = found;
});
afterAll(async () => {
  await sim.close();
});

describe('the fixture stack', () => {
  it('lives in the first org and serves each non-preview fixture as one history update, in version order', () => {
    expect(fixture.org).toBe(sim.truth().stacks[0]?.org);
    const names = fixtureNames().filter((n) => !n.includes('preview'));
    expect(fixture.updates.map((u) => u.version)).toEqual(names.map((_, i) => i + 1));
    const byName = new Map(names.map((n, i) => [n, fixture.updates[i]]));
    expect(byName.get('engine-refresh.ndjson')?.kind).toBe('refresh');
    for (const n of ['engine-up-failures-continue-on-error.ndjson', 'engine-up-policy-violations.ndjson', 'real-up-failed-status-unknown.ndjson']) {
      expect(byName.get(n)).toMatchObject({ kind: 'update', historyResult: 'failed', result: 'failed' });
    }
    for (const n of ['real-up-create-eks.ndjson', 'real-up-update-one-resource.ndjson', 'engine-up-delete-before-replace.ndjson']) {
      expect(byName.get(n)).toMatchObject({ kind: 'update', historyResult: 'succeeded', result: 'succeeded' });
    }
    expect(byName.get('real-up-create-eks.ndjson')?.resourceChanges).toEqual({ create: 6 });
    expect(byName.get('engine-up-policy-violations.ndjson')?.policyViolations).toHaveLength(10);
    for (const u of fixture.updates) {
      expect(u.resourceOperations).toBeNull();
      expect(u.endTime ?? 0).toBeGreaterThan(u.startTime);
    }
    expect(fixture.updates.map((u) => u.startTime)).toEqual([...fixture.updates.map((u) => u.startTime)].sort((a, b) => a - b));
  });

  it('serves exactly the fixture events of every update and preview, across several pages', async () => {
    const history = fixtureNames().filter((n) => !n.includes('preview'));
    const previews = fixtureNames().filter((n) => n.includes('preview'));
    expect(fixture.previews.map((p) => p.kind)).toEqual(previews.map(() => 'Pupdate'));
    const pairs: Array<[string, string]> = [
      ...history.map((n, i): [string, string] => [n, fixture.updates[i]?.updateId ?? '']),
      ...previews.map((n, i): [string, string] => [n, fixture.previews[i]?.updateId ?? '']),
    ];
    let multiPage = 0;
    for (const [name, updateId] of pairs) {
      const { events, pages, tokens } = await allEvents(sim.url, `${stackPath(fixture)}/update/${updateId}/events`);
      expect(events, name).toEqual(expectedEvents(name));
      // Tokens are opaque strings, not bare offsets.
      for (const t of tokens) expect(t).not.toMatch(/^\d+$/);
      if (pages > 1) multiPage++;
    }
    expect(multiPage).toBeGreaterThan(3);
  });

  it('lists the fixture previews as the latest previews, newest first by default', async () => {
    const page = (await getJson(sim.url, `${stackPath(fixture)}/updates/latest/previews`)) as { updates: Array<{ updateID: string }>; total: number };
    expect(page.total).toBe(fixture.previews.length);
    expect(page.updates.map((u) => u.updateID)).toEqual([...fixture.previews].reverse().map((p) => p.updateId));
    const asc = (await getJson(sim.url, `${stackPath(fixture)}/updates/latest/previews?asc=true&page=1&pageSize=2`)) as { updates: Array<{ updateID: string }>; itemsPerPage: number };
    expect(asc.itemsPerPage).toBe(2);
    expect(asc.updates.map((u) => u.updateID)).toEqual(fixture.previews.slice(0, 2).map((p) => p.updateId));
  });
});

describe('findPackageRoot', () => {
  it('finds the package root from a module under src/ and from one under dist/src/', () => {
    const root = findPackageRoot();
    if (!root) throw new Error('no package root');
    expect(findPackageRoot(pathToFileURL(join(root, 'dist', 'src', 'simulator', 'simulator.js')).href)).toBe(root);
    expect(findPackageRoot(pathToFileURL(join(root, 'src', 'simulator', 'simulator.ts')).href)).toBe(root);
  });
});
