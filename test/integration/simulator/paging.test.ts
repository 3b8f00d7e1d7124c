import { afterEach, describe, expect, it, vi } from 'vitest';
import { MAX_STACK_PAGE, startSimulator, type RunningSimulator } from '../../../src/simulator/simulator.js';
import type { TruthStack } from '../../../src/simulator/simulator-truth.js';
import { allEvents, getJson, stackPath } from './http.js';

const NOW = 1_750_000_000;
const running: RunningSimulator[] = [];

async function simulator(options: Parameters<typeof startSimulator>[0] = {}): Promise<RunningSimulator> {
  const sim = await startSimulator({ seed: 5, nowSeconds: NOW, ...options });
  running.push(sim);
  return sim;
}

afterEach(async () => {
  vi.useRealTimers();
  while (running.length > 0) await running.pop()?.close();
});

interface StacksPage {
  stacks: Array<{ orgName: string; projectName: string; stackName: string; lastUpdate?: number; resourceCount?: number }>;
  continuationToken?: string | null;
}
interface EventsPage {
  events: Array<{ type: string; timestamp: number }>;
  continuationToken: string | null;
}
interface History {
  updates: Array<{ updateID: string; version: number; info: { result: string; endTime: number; startTime: number; resourceChanges?: Record<string, number> } }>;
  total: number;
  itemsPerPage: number;
}

function busiest(sim: RunningSimulator): TruthStack {
  const s = [...sim.truth().stacks].filter((x) => x.project !== 'pulumi-samples').sort((a, b) => b.updates.length - a.updates.length)[0];
  if (!s) throw new Error('no stacks');
  return s;
}

describe('simulator paging', () => {
  it('pages the stack list with opaque continuation tokens until there are no more', async () => {
    const sim = await simulator({ stackPageSize: 4 });
    const org = sim.truth().stacks[0]?.org ?? '';
    const want = sim.truth().stacks.filter((s) => s.org === org);
    const got: StacksPage['stacks'] = [];
    let token: string | null | undefined;
    let pages = 0;
    do {
      const page = (await getJson(sim.url, `/api/user/stacks?organization=${org}${token ? `&continuationToken=${encodeURIComponent(token)}` : ''}`)) as StacksPage;
      expect(page.stacks.length).toBeLessThanOrEqual(4);
      got.push(...page.stacks);
      token = page.continuationToken;
      pages++;
    } while (token);
    expect(pages).toBe(Math.ceil(want.length / 4));
    expect(got.map((s) => `${s.orgName}/${s.projectName}/${s.stackName}`)).toEqual(want.map((s) => `${s.org}/${s.project}/${s.stack}`));
    for (const [i, s] of got.entries()) {
      expect(s.lastUpdate).toBe(want[i]?.lastUpdate);
      expect(s.resourceCount).toBe(want[i]?.resourceCount);
    }
  });

  it('serves maxResults stacks per page, clamped to MAX_STACK_PAGE', async () => {
    const sim = await simulator({ stackPageSize: 4, scale: { orgs: 1, projectsPerOrg: 3, stacksPerProject: 170, updatesPerStack: 1, resourcesPerStack: 1 }, fixtures: false });
    const org = sim.truth().stacks[0]?.org ?? '';
    const total = sim.truth().stacks.length;
    expect(total).toBeGreaterThan(MAX_STACK_PAGE);
    const seven = (await getJson(sim.url, `/api/user/stacks?organization=${org}&maxResults=7`)) as StacksPage;
    expect(seven.stacks).toHaveLength(7);
    const huge = (await getJson(sim.url, `/api/user/stacks?organization=${org}&maxResults=100000`)) as StacksPage;
    expect(huge.stacks).toHaveLength(MAX_STACK_PAGE);
    const rest = (await getJson(sim.url, `/api/user/stacks?organization=${org}&maxResults=100000&continuationToken=${encodeURIComponent(huge.continuationToken ?? '')}`)) as StacksPage;
    expect(rest.stacks).toHaveLength(total - MAX_STACK_PAGE);
    expect(rest.continuationToken ?? null).toBeNull();
  });

  it('pages history newest first by page number, and returns everything for page 0', async () => {
    const sim = await simulator();
    const t = busiest(sim);
    const ids: string[] = [];
    for (let page = 1; ; page++) {
      const h = (await getJson(sim.url, `${stackPath(t)}/updates?output-type=service&page=${page}&pageSize=3`)) as History;
      expect(h.total).toBe(t.updates.length);
      expect(h.itemsPerPage).toBe(3);
      ids.push(...h.updates.map((u) => u.updateID));
      if (h.updates.length < 3) break;
    }
    const newestFirst = [...t.updates].reverse().map((u) => u.updateId);
    expect(ids).toEqual(newestFirst);
    const all = (await getJson(sim.url, `${stackPath(t)}/updates?output-type=service&page=0`)) as History;
    expect(all.updates.map((u) => u.updateID)).toEqual(newestFirst);
  });

  it('pages a completed update\'s events and ends with a null token', async () => {
    const sim = await simulator({ eventPageSize: 5 });
    const t = busiest(sim);
    for (const u of t.updates) {
      const { events, pages } = await allEvents(sim.url, `${stackPath(t)}/update/${u.updateId}/events`);
      expect(events).toHaveLength(u.eventCount);
      expect(pages).toBe(Math.max(1, Math.ceil(u.eventCount / 5)));
    }
  });

  it('filters events by URN across pages', async () => {
    const sim = await simulator({ eventPageSize: 3 });
    const t = busiest(sim);
    const u = t.updates[t.updates.length - 1];
    if (!u) throw new Error('no update');
    const { events } = await allEvents(sim.url, `${stackPath(t)}/update/${u.updateId}/events`);
    const pre = events.find((e) => (e as { type: string }).type === 'resourcePreEvent') as { resourcePreEvent: { metadata: { urn: string } } };
    const urn = pre.resourcePreEvent.metadata.urn;
    const filtered = await allEvents(sim.url, `${stackPath(t)}/update/${u.updateId}/events?urn=${encodeURIComponent(urn)}`);
    expect(filtered.events.length).toBeGreaterThan(0);
    const about = (e: unknown): boolean => {
      const ev = e as Record<string, Record<string, unknown> | string>;
      const p = ev[ev['type'] as string] as Record<string, unknown>;
      return (p['metadata'] as Record<string, unknown> | undefined)?.['urn'] === urn || p['urn'] === urn || p['resourceUrn'] === urn;
    };
    expect(filtered.events).toEqual(events.filter(about));
    expect(filtered.events.length).toBeLessThan(events.length);
  });
});

describe('a running update on the simulator', () => {
  it('shows in-progress history, repeats its token while nothing is new, and ends with null after completion', async () => {
    const sim = await simulator({ eventPageSize: 100, tickEvents: 3 });
    const t = busiest(sim);
    const ref = { org: t.org, project: t.project, stack: t.stack };
    const id = sim.control.startUpdate(ref, { kind: 'update', result: 'succeeded' });
    const started = sim.truth().stacks.find((s) => s.org === t.org && s.project === t.project && s.stack === t.stack)?.updates.at(-1);
    expect(started).toMatchObject({ updateId: id, historyResult: 'in-progress', result: 'in-progress' });

    const history = (await getJson(sim.url, `${stackPath(t)}/updates?output-type=service&page=1&pageSize=1`)) as History;
    expect(history.updates[0]).toMatchObject({ updateID: id, info: { result: 'in-progress', endTime: 0 } });
    expect(history.updates[0]?.info.resourceChanges).toBeUndefined();
    const list = (await getJson(sim.url, `/api/user/stacks?organization=${t.org}`)) as StacksPage;
    const listed = list.stacks.find((s) => s.projectName === t.project && s.stackName === t.stack);
    expect(listed?.lastUpdate).toBe(started?.startTime);
    const stack = (await getJson(sim.url, stackPath(t))) as { currentOperation?: { kind: string; started: number }; activeUpdate: string };
    expect(stack.currentOperation).toMatchObject({ kind: 'update', started: started?.startTime });
    expect(stack.activeUpdate).toBe(id);
    const status = (await getJson(sim.url, `${stackPath(t)}/update/${id}`)) as { status: string; continuationToken: string | null };
    expect(status.status).toBe('running');
    expect(status.continuationToken).not.toBeNull();

    const path = `${stackPath(t)}/update/${id}/events`;
    const seen: EventsPage['events'] = [];
    const first = (await getJson(sim.url, path)) as EventsPage;
    expect(first.events).toEqual([]);
    let token = first.continuationToken;
    expect(token).not.toBeNull();
    const again = (await getJson(sim.url, `${path}?continuationToken=${encodeURIComponent(token ?? '')}`)) as EventsPage;
    expect(again).toEqual({ events: [], continuationToken: token });

    sim.control.tick();
    const afterTick = (await getJson(sim.url, `${path}?continuationToken=${encodeURIComponent(token ?? '')}`)) as EventsPage;
    expect(afterTick.events).toHaveLength(3);
    expect(afterTick.continuationToken).not.toBeNull();
    expect(afterTick.continuationToken).not.toBe(token);
    seen.push(...afterTick.events);
    token = afterTick.continuationToken;
    const idle = (await getJson(sim.url, `${path}?continuationToken=${encodeURIComponent(token ?? '')}`)) as EventsPage;
    expect(idle).toEqual({ events: [], continuationToken: token });

    sim.control.completeUpdate(ref, id);
    for (;;) {
      const page = (await getJson(sim.url, `${path}?continuationToken=${encodeURIComponent(token ?? '')}`)) as EventsPage;
      seen.push(...page.events);
      if (page.continuationToken === null) break;
      token = page.continuationToken;
    }
    const done = sim.truth().stacks.flatMap((s) => s.updates).find((u) => u.updateId === id);
    expect(seen).toHaveLength(done?.eventCount ?? -1);
    expect(seen.at(-1)?.type).toBe('summaryEvent');
    const after = (await getJson(sim.url, `${stackPath(t)}/updates?output-type=service&page=1&pageSize=1`)) as History;
    expect(after.updates[0]?.info).toMatchObject({ result: 'succeeded', endTime: done?.endTime });
    expect(await getJson(sim.url, `${stackPath(t)}/update/${id}`)).toEqual({ status: 'succeeded', events: [], continuationToken: null });
  });

  it('adds completed updates and moves its clock for the next ones', async () => {
    const sim = await simulator();
    const t = busiest(sim);
    const ref = { org: t.org, project: t.project, stack: t.stack };
    sim.control.advanceClock(7_200);
    const id = sim.control.addCompletedUpdate(ref, { kind: 'refresh', result: 'cancelled' });
    const u = sim.truth().stacks.flatMap((s) => s.updates).find((x) => x.updateId === id);
    expect(u).toMatchObject({ kind: 'refresh', historyResult: 'failed', result: 'cancelled', version: t.updates.length + 1 });
    expect(u?.startTime).toBeGreaterThanOrEqual(NOW + 7_200);
  });

  it('serves a preview by its version after an update supersedes it, never in history or lastUpdate', async () => {
    const sim = await simulator();
    const t = busiest(sim);
    const ref = { org: t.org, project: t.project, stack: t.stack };
    const base = stackPath(t);
    const before = t.updates.length;
    const preview = sim.control.addCompletedPreview(ref, { kind: 'refresh', result: 'failed' });
    const truth = sim.truth().stacks.find((s) => s.stack === t.stack && s.project === t.project && s.org === t.org);
    expect(truth?.lastUpdate).toBe(t.lastUpdate);
    expect(truth?.allPreviews.find((p) => p.updateId === preview)).toMatchObject({ kind: 'Prefresh', version: before, result: 'failed' });
    const latest = (await getJson(sim.url, `${base}/updates/latest/previews?asc=false&page=1&pageSize=1`)) as History;
    expect(latest.updates.map((u) => u.updateID)).toEqual([preview]);
    sim.control.addCompletedUpdate(ref);
    const after = (await getJson(sim.url, `${base}/updates/latest/previews?asc=false`)) as History;
    expect(after.updates).toEqual([]);
    const byVersion = (await getJson(sim.url, `${base}/updates/${before}/previews?asc=true`)) as History;
    expect(byVersion.updates.map((u) => u.updateID)).toContain(preview);
    expect(byVersion.updates.every((u) => u.version === before)).toBe(true);
    const history = (await getJson(sim.url, `${base}/updates?output-type=service`)) as History;
    expect(history.updates.map((u) => u.updateID)).not.toContain(preview);
    expect(() => sim.control.startPreview(ref, { result: 'cancelled' as 'failed' })).toThrow(/not cancelled/);
  });

  it('starts and advances updates on its own in live mode, driven by its interval timer', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'Date'] });
    vi.setSystemTime(NOW * 1000);
    const sim = await simulator({ live: { intervalMs: 1_000 } });
    const count = () => sim.truth().stacks.reduce((n, s) => n + s.updates.length + s.previews.length, 0);
    const before = count();
    vi.advanceTimersByTime(60_000);
    expect(count()).toBeGreaterThan(before);
    const inFlight = sim.truth().stacks.flatMap((s) => [...s.updates, ...s.previews]).filter((u) => u.result === 'in-progress');
    const completedLive = sim.truth().stacks.flatMap((s) => s.updates).filter((u) => u.startTime >= NOW && u.result !== 'in-progress');
    expect(inFlight.length + completedLive.length).toBeGreaterThan(0);
  });
});
