import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SimulatorError } from '../../../src/simulator/simulator-error.js';
import { startSimulator, type RunningSimulator } from '../../../src/simulator/simulator.js';
import { get } from './http.js';

const NOW = 1_750_000_000;
let sim: RunningSimulator;
let org: string;

beforeAll(async () => {
  sim = await startSimulator({ seed: 2, nowSeconds: NOW, acceptedToken: 'right-token' });
  org = sim.truth().stacks[0]?.org ?? '';
});
afterAll(async () => {
  await sim.close();
});
beforeEach(() => {
  sim.faults.clear();
  sim.resetStats();
});

const auth = { authorization: 'token right-token' };
const stacks = () => get(sim.url, `/api/user/stacks?organization=${org}`, auth);

describe('simulator authentication', () => {
  it('refuses a missing, malformed or wrong token with 401 and accepts the configured one', async () => {
    const variants: Array<Record<string, string>> = [{}, { authorization: 'Bearer right-token' }, { authorization: 'token ' }, { authorization: 'token wrong-token' }];
    for (const headers of variants) {
      const res = await get(sim.url, `/api/user/stacks?organization=${org}`, headers);
      expect(res.status).toBe(401);
      expect(JSON.parse(res.text)).toMatchObject({ code: 401 });
    }
    expect((await stacks()).status).toBe(200);
    expect(sim.stats()).toEqual({ total: 5, byEndpoint: { listStacks: 5, getStack: 0, listUpdates: 0, latestPreviews: 0, versionPreviews: 0, updateStatus: 0, engineEvents: 0 } });
  });

  it('accepts any non-empty token when no token is configured', async () => {
    const open = await startSimulator({ seed: 2, nowSeconds: NOW });
    try {
      expect((await get(open.url, '/api/user/stacks', { authorization: 'token whatever' })).status).toBe(200);
      expect((await get(open.url, '/api/user/stacks', {})).status).toBe(401);
    } finally {
      await open.close();
    }
  });
});

describe('simulator fault injection', () => {
  it('answers 429 with Retry-After and an ErrorResponse for the next `count` requests only', async () => {
    sim.faults.add({ kind: '429', endpoint: 'listStacks', count: 2, retryAfterSeconds: 7 });
    for (let i = 0; i < 2; i++) {
      const res = await stacks();
      expect(res.status).toBe(429);
      expect(res.headers['retry-after']).toBe('7');
      expect(JSON.parse(res.text)).toMatchObject({ code: 429 });
    }
    expect((await stacks()).status).toBe(200);
    expect(sim.stats().byEndpoint.listStacks).toBe(3);
  });

  it.each(['500', '502', '503', '504', '401'] as const)('answers an injected %s', async (kind) => {
    sim.faults.add({ kind, count: 1 });
    const res = await stacks();
    expect(res.status).toBe(Number(kind));
    expect(JSON.parse(res.text)).toEqual({ code: Number(kind), message: expect.any(String) });
    expect((await stacks()).status).toBe(200);
  });

  it('faults only the endpoint a rule names', async () => {
    sim.faults.add({ kind: '503', endpoint: 'getStack' });
    const t = sim.truth().stacks[0];
    if (!t) throw new Error('no stack');
    expect((await stacks()).status).toBe(200);
    expect((await get(sim.url, `/api/stacks/${t.org}/${t.project}/${t.stack}`, auth)).status).toBe(503);
    expect((await get(sim.url, `/api/stacks/${t.org}/${t.project}/${t.stack}`, auth)).status).toBe(503);
  });

  it('faults every Nth matching request', async () => {
    sim.faults.add({ kind: '500', everyNth: 3 });
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await stacks()).status);
    expect(statuses).toEqual([200, 200, 500, 200, 200, 500]);
  });

  it('serves a malformed body as a 200 that is not valid JSON', async () => {
    sim.faults.add({ kind: 'malformed', endpoint: 'listStacks', count: 1 });
    const res = await stacks();
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/json');
    expect(() => JSON.parse(res.text) as unknown).toThrow();
    const good = await stacks();
    expect(good.text.startsWith(res.text)).toBe(true);
  });

  it('answers a slow request late but correctly', async () => {
    sim.faults.add({ kind: 'slow', endpoint: 'listStacks', count: 1, delayMs: 300 });
    // A client that waits 50 ms gives up on the slow answer...
    await expect(
      fetch(`${sim.url}/api/user/stacks?organization=${org}`, { headers: auth, signal: AbortSignal.timeout(50) }),
    ).rejects.toThrow();
    sim.faults.add({ kind: 'slow', endpoint: 'listStacks', count: 1, delayMs: 20 });
    // ...and a patient one gets the normal body.
    const res = await stacks();
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text)).toHaveProperty('stacks');
  });

  it('compresses answers with gzip only when the client accepts it', async () => {
    const plain = await stacks();
    expect(plain.headers['content-encoding']).toBeUndefined();
    const gz = await get(sim.url, `/api/user/stacks?organization=${org}`, { ...auth, 'accept-encoding': 'gzip' });
    expect(gz.headers['content-encoding']).toBe('gzip');
    expect(gunzipSync(gz.raw).toString('utf8')).toBe(plain.text);
  });

  it('rejects invalid fault rules with a coded error', () => {
    expect(() => sim.faults.add({ kind: '418' as '429' })).toThrow(SimulatorError);
    expect(() => sim.faults.add({ kind: '429', count: 0 })).toThrow(/count must be a positive integer/);
    expect(() => sim.faults.add({ kind: '429', count: 1, everyNth: 2 })).toThrow(/not both/);
    expect(() => sim.faults.add({ kind: '429', endpoint: 'nope' as 'getStack' })).toThrow(/unknown fault endpoint/);
  });

  it('starts with the fault rules given as options', async () => {
    const faulty = await startSimulator({ seed: 2, nowSeconds: NOW, faults: [{ kind: '502', count: 1 }] });
    try {
      expect((await get(faulty.url, '/api/user/stacks', { authorization: 'token x' })).status).toBe(502);
      expect((await get(faulty.url, '/api/user/stacks', { authorization: 'token x' })).status).toBe(200);
    } finally {
      await faulty.close();
    }
  });
});
