import { describe, expect, it } from 'vitest';
import { startSimulator, type RunningSimulator } from '../../../src/simulator/simulator.js';
import { get, stackPath } from './http.js';

const NOW = 1_750_000_000;

/** Every GET body of a simulator, in a fixed order. */
async function crawl(sim: RunningSimulator): Promise<string[]> {
  const bodies: string[] = [];
  const fetchText = async (path: string) => {
    const res = await get(sim.url, path);
    expect(res.status).toBe(200);
    bodies.push(res.text);
    return res.text;
  };
  for (const org of [...new Set(sim.truth().stacks.map((s) => s.org))]) await fetchText(`/api/user/stacks?organization=${org}`);
  for (const t of sim.truth().stacks) {
    await fetchText(stackPath(t));
    await fetchText(`${stackPath(t)}/updates?output-type=service`);
    await fetchText(`${stackPath(t)}/updates/latest/previews?asc=true`);
    for (const u of [...t.updates, ...t.previews]) await fetchText(`${stackPath(t)}/update/${u.updateId}/events`);
  }
  return bodies;
}

describe('simulator determinism', () => {
  it('serves byte-identical responses and truth for the same seed, and different data for another seed', async () => {
    const a = await startSimulator({ seed: 21, nowSeconds: NOW });
    const b = await startSimulator({ seed: 21, nowSeconds: NOW });
    const c = await startSimulator({ seed: 22, nowSeconds: NOW });
    try {
      expect(b.truth()).toEqual(a.truth());
      const [bodiesA, bodiesB] = [await crawl(a), await crawl(b)];
      expect(bodiesB).toEqual(bodiesA);
      expect(c.truth()).not.toEqual(a.truth());
      expect((await get(c.url, '/api/user/stacks')).text).not.toBe((await get(a.url, '/api/user/stacks')).text);
    } finally {
      await Promise.all([a.close(), b.close(), c.close()]);
    }
  });

  it('keeps control actions deterministic for the same sequence of calls', async () => {
    const run = async () => {
      const sim = await startSimulator({ seed: 8, nowSeconds: NOW });
      try {
        const t = sim.truth().stacks.find((s) => s.updates.length > 0 && s.project !== 'pulumi-samples');
        if (!t) throw new Error('no stack');
        const ref = { org: t.org, project: t.project, stack: t.stack };
        sim.control.addCompletedUpdate(ref, { kind: 'update', result: 'failed' });
        sim.control.advanceClock(120);
        sim.control.addCompletedUpdate(ref, { kind: 'destroy' });
        return sim.truth();
      } finally {
        await sim.close();
      }
    };
    expect(await run()).toEqual(await run());
  });
});
