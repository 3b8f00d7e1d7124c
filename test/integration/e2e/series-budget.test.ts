import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../../src/app.js';
import type { RunningSimulator } from '../../../src/simulator/simulator.js';
import { buildApp, configFor, scrape, startTestSimulator, tempDir } from '../../helpers/e2e.js';
import type { Sample } from '../../helpers/exposition.js';

/**
 * The cardinality budget of the telemetry conventions: with the default configuration a
 * stack with update, refresh and destroy history costs at most ~40 series. The conventions
 * label pulumi_updates_total and pulumi_stack_update_duration_seconds by result, so each
 * further result of a kind a stack has seen (say a cancelled destroy next to succeeded ones)
 * adds 3 series: the counter and the summary's sum and count (docs/metrics.md, "Series per stack").
 */
const SERIES_PER_STACK_BUDGET = 40;
const SERIES_PER_EXTRA_RESULT = 3;

/** Series that carry a stack's identity (org, project and stack labels), per stack. */
function seriesPerStack(samples: readonly Sample[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of samples) {
    const { org, project, stack } = s.labels;
    if (org === undefined || project === undefined || stack === undefined) continue;
    const key = `${org}/${project}/${stack}`;
    out.set(key, (out.get(key) ?? 0) + 1);
  }
  return out;
}

describe('series budget per stack on simulator data', () => {
  let sim: RunningSimulator;
  let app: App;
  const tmp = tempDir('pue-budget-');

  beforeAll(async () => {
    sim = await startTestSimulator();
    app = buildApp(configFor(sim, `${tmp.dir}/state.db`));
    await app.runOnce();
  }, 120_000);

  afterAll(async () => {
    await app?.stop();
    await sim?.close();
    tmp.cleanup();
  });

  it(`stays within ${SERIES_PER_STACK_BUDGET} series per stack (+${SERIES_PER_EXTRA_RESULT} per further result of a kind), also with update, refresh and destroy history`, async () => {
    const samples = await scrape(app);
    const perStack = seriesPerStack(samples);
    const truth = sim.truth();
    expect(perStack.size).toBe(truth.stacks.length);

    type TruthStack = (typeof truth.stacks)[number];
    const terminal = (s: TruthStack): TruthStack['updates'] => s.updates.filter((u) => u.result !== 'in-progress');
    const kinds = (s: TruthStack): Set<string> => new Set(terminal(s).map((u) => u.kind));
    const budget = (s: TruthStack): number => {
      const pairs = new Set(terminal(s).map((u) => `${u.kind}/${u.result}`)).size;
      return SERIES_PER_STACK_BUDGET + SERIES_PER_EXTRA_RESULT * Math.max(0, pairs - kinds(s).size);
    };
    // The budget is about the case the conventions name, so the data must contain it.
    const full = truth.stacks.filter((s) => ['update', 'refresh', 'destroy'].every((k) => kinds(s).has(k)));
    expect(full.length).toBeGreaterThan(0);

    const over = truth.stacks
      .map((s) => ({ stack: `${s.org}/${s.project}/${s.stack}`, series: perStack.get(`${s.org}/${s.project}/${s.stack}`) ?? 0, budget: budget(s) }))
      .filter((r) => r.series > r.budget);
    expect(over).toEqual([]);
    for (const s of full) expect(perStack.get(`${s.org}/${s.project}/${s.stack}`)).toBeGreaterThan(20);
    // No histogram bucket carries a stack label by default.
    expect(samples.filter((s) => s.name.endsWith('_bucket') && s.labels['stack'] !== undefined)).toEqual([]);
  });

  it('adds the documented series per stack for each opt-in detail', async () => {
    const base = seriesPerStack(await scrape(app));
    const detailed = buildApp(
      configFor(sim, `${tmp.dir}/detailed.db`, {
        metrics: { updateDurationByStack: true, resourceOperationsByStack: true, resourceOperationDurationByStack: true },
      }),
    );
    try {
      await detailed.runOnce();
      const samples = await scrape(detailed);
      const more = seriesPerStack(samples);
      // Stacks with resource steps in their history gain series; none loses any.
      for (const [stack, n] of base) expect(more.get(stack) ?? 0).toBeGreaterThanOrEqual(n);
      expect([...base].filter(([stack, n]) => (more.get(stack) ?? 0) > n).length).toBeGreaterThan(0);
      // 16 series per stack, kind and result for the update duration histogram.
      const byStack = samples.filter((s) => s.name.startsWith('pulumi_update_duration_seconds') && s.labels['stack'] !== undefined);
      const combos = new Set(byStack.map((s) => `${s.labels['org']}/${s.labels['project']}/${s.labels['stack']}/${s.labels['kind']}/${s.labels['result']}`));
      expect(combos.size).toBeGreaterThan(0);
      expect(byStack.length).toBe(combos.size * 16);
    } finally {
      await detailed.stop();
    }
  }, 120_000);
});
