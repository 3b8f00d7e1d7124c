import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { parseEngineEvent } from '../../../src/pulumi/wire-events.js';
import { startSimulator, type RunningSimulator } from '../../../src/simulator/simulator.js';
import { allEvents, get, getJson, stackPath } from './http.js';

/**
 * The documented wire shapes (shared pulumi-api.md sections 2 and 5), written here
 * independently of the simulator, and checked against every response for every stack.
 */
const uuid = z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
const unixSeconds = z.number().int().gt(1_000_000_000).lt(10_000_000_000);

const ErrorResponse = z.object({ code: z.number().int().min(400).max(599), message: z.string().min(1) }).strict();

const StackSummary = z
  .object({
    id: z.string().min(1),
    orgName: z.string().min(1),
    projectName: z.string().min(1),
    stackName: z.string().min(1),
    lastUpdate: unixSeconds.optional(),
    resourceCount: z.number().int().nonnegative().optional(),
    links: z.object({ self: z.string().url() }).strict().optional(),
  })
  .strict();
const ListStacksResponse = z.object({ stacks: z.array(StackSummary), continuationToken: z.string().min(1).nullable().optional() }).strict();

const StackResponse = z
  .object({
    id: z.string().min(1),
    orgName: z.string(),
    projectName: z.string(),
    stackName: z.string(),
    currentOperation: z.object({ kind: z.string(), author: z.string(), started: unixSeconds }).strict().optional(),
    activeUpdate: z.string(),
    tags: z.record(z.string(), z.string()).optional(),
    config: z.record(z.string(), z.unknown()).optional(),
    version: z.number().int().nonnegative(),
  })
  .strict();

const ConfigValue = z.object({ string: z.string(), secret: z.boolean(), object: z.boolean() }).strict();
const UserInfo = z.object({ name: z.string(), githubLogin: z.string().min(1), avatarUrl: z.string(), email: z.string().optional() }).strict();
const UpdateInfoLegacy = z
  .object({
    kind: z.string().min(1),
    startTime: unixSeconds,
    message: z.string(),
    environment: z.record(z.string(), z.string()),
    config: z.record(z.string(), ConfigValue),
    result: z.enum(['not-started', 'in-progress', 'succeeded', 'failed']),
    endTime: z.number().int().nonnegative(),
    version: z.number().int().nonnegative(),
    resourceChanges: z.record(z.string(), z.number().int().nonnegative()).optional(),
    resourceCount: z.number().int().nonnegative().optional(),
  })
  .strict();
const UpdateInfoService = z
  .object({
    info: UpdateInfoLegacy,
    updateID: uuid,
    githubCommitInfo: z
      .object({ slug: z.string(), sha: z.string(), url: z.string().url(), message: z.string(), author: UserInfo.optional(), committer: UserInfo.optional() })
      .partial()
      .strict()
      .optional(),
    version: z.number().int().nonnegative(),
    latestVersion: z.number().int().nonnegative(),
    requestedBy: UserInfo,
    policyPacks: z.array(z.object({ name: z.string(), displayName: z.string(), version: z.number().int(), versionTag: z.string() }).strict()).optional(),
    requestedByToken: z.string().optional(),
  })
  .strict();
const ServiceHistory = z.object({ updates: z.array(UpdateInfoService), itemsPerPage: z.number().int().nonnegative(), total: z.number().int().nonnegative() }).strict();
const LegacyHistory = z.object({ updates: z.array(UpdateInfoLegacy) }).strict();
const UpdateResults = z
  .object({
    status: z.enum(['not started', 'requested', 'running', 'failed', 'succeeded', 'cancelled']),
    events: z.array(z.unknown()),
    continuationToken: z.string().nullable().optional(),
  })
  .strict();
const WireEvent = z
  .object({ timestamp: z.number().int().nonnegative(), type: z.string() })
  .catchall(z.unknown())
  .superRefine((e, ctx) => {
    const payloadKeys = Object.keys(e).filter((k) => k !== 'timestamp' && k !== 'type');
    if (payloadKeys.length !== 1 || payloadKeys[0] !== e.type) ctx.addIssue({ code: 'custom', message: `payload keys ${payloadKeys.join(',')} vs type ${e.type}` });
    if (e.type === 'cancelEvent') ctx.addIssue({ code: 'custom', message: 'the service never returns cancelEvent' });
  });
const EventsPage = z.object({ events: z.array(WireEvent), continuationToken: z.string().min(1).nullable() }).strict();

const NOW = 1_750_000_000;
let sim: RunningSimulator;

beforeAll(async () => {
  sim = await startSimulator({ seed: 3, nowSeconds: NOW, stackPageSize: 5, eventPageSize: 40 });
});
afterAll(async () => {
  await sim.close();
});

describe('simulator responses match the documented Pulumi Cloud wire shapes', () => {
  it('serves every stack list page, stack, history, preview list, status and events page in the documented shape', async () => {
    const truth = sim.truth();
    const orgs = [...new Set(truth.stacks.map((s) => s.org))];
    let listed = 0;
    for (const org of orgs) {
      let token: string | null | undefined;
      do {
        const q = token ? `&continuationToken=${encodeURIComponent(token)}` : '';
        const page = ListStacksResponse.parse(await getJson(sim.url, `/api/user/stacks?organization=${org}${q}`));
        listed += page.stacks.length;
        token = page.continuationToken;
      } while (token);
    }
    expect(listed).toBe(truth.stacks.length);

    let events = 0;
    for (const t of truth.stacks) {
      const base = stackPath(t);
      const stack = StackResponse.parse(await getJson(sim.url, base));
      expect(stack.version).toBe(t.updates.length);
      const history = ServiceHistory.parse(await getJson(sim.url, `${base}/updates?output-type=service`));
      expect(history.total).toBe(t.updates.length);
      expect(history.updates.map((u) => u.updateID)).toEqual([...t.updates].reverse().map((u) => u.updateId));
      for (const u of history.updates) {
        expect(u.latestVersion).toBe(t.updates.length);
        expect(Object.keys(u.info.resourceChanges ?? {})).toEqual(expect.arrayContaining(['create', 'delete', 'same', 'update']));
      }
      ServiceHistory.parse(await getJson(sim.url, `${base}/updates?output-type=service&page=1&pageSize=2`));
      const legacy = LegacyHistory.parse(await getJson(sim.url, `${base}/updates`));
      expect(legacy.updates).toHaveLength(t.updates.length);
      const previews = ServiceHistory.parse(await getJson(sim.url, `${base}/updates/latest/previews?asc=false`));
      expect(previews.updates.map((p) => p.updateID).sort()).toEqual(t.previews.map((p) => p.updateId).sort());

      for (const u of [...t.updates, ...t.previews]) {
        const segment = u.kind.startsWith('P') || u.kind === 'preview' ? 'preview' : u.kind;
        const status = UpdateResults.parse(await getJson(sim.url, `${base}/${segment}/${u.updateId}`));
        expect(status.status).toBe(u.result);
        const path = `${base}/update/${u.updateId}/events`;
        const first = EventsPage.parse(await getJson(sim.url, path));
        const { events: all } = await allEvents(sim.url, path);
        expect(all.slice(0, first.events.length)).toEqual(first.events);
        expect(all).toHaveLength(u.eventCount);
        for (const e of all) {
          WireEvent.parse(e);
          const parsed = parseEngineEvent(e);
          expect(parsed.ok).toBe(true);
          if (parsed.ok) expect(parsed.event.type).not.toBe('unknown');
        }
        events += all.length;
      }
    }
    expect(events).toBeGreaterThan(1000);
  });

  it('answers unknown stacks, updates and paths, bad tokens and bad paging with an ErrorResponse', async () => {
    const t = sim.truth().stacks.find((s) => s.updates.length > 0);
    if (!t) throw new Error('no stack with updates');
    const u = t.updates[0];
    if (!u) throw new Error('no update');
    const cases: Array<[string, number]> = [
      ['/api/stacks/no-org/no-project/no-stack', 404],
      [`${stackPath(t)}/update/00000000-0000-4000-8000-000000000000/events`, 404],
      ['/api/nothing/here', 404],
      [`${stackPath(t)}/update/${u.updateId}/events?continuationToken=not-a-token`, 400],
      ['/api/user/stacks?continuationToken=%%%', 400],
      [`${stackPath(t)}/updates?output-type=service&page=-1`, 400],
    ];
    for (const [path, status] of cases) {
      const res = await get(sim.url, path);
      expect(res.status).toBe(status);
      ErrorResponse.parse(JSON.parse(res.text));
    }
    const unauth = await get(sim.url, '/api/user/stacks', {});
    expect(unauth.status).toBe(401);
    ErrorResponse.parse(JSON.parse(unauth.text));
  });

  it('decodes URL-encoded path segments', async () => {
    const t = sim.truth().stacks.find((s) => s.stack.includes('.'));
    if (!t) throw new Error('no stack name with a dot');
    const encoded = `/api/stacks/${t.org}/${t.project}/${t.stack.replace('.', '%2E').replace('_', '%5F')}`;
    expect(StackResponse.parse(await getJson(sim.url, encoded)).stackName).toBe(t.stack);
  });
});
