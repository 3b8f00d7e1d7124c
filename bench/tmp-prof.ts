import { SqliteStateStore } from '/work/wt/metrics/src/state/sqlite-store.js';
import { storeSamples } from '/work/wt/metrics/src/metrics/store-samples.js';
import { renderFamilies } from '/work/wt/metrics/src/metrics/render-exposition.js';
import { METRIC_DEFINITIONS } from '/work/wt/metrics/src/metrics/definitions.js';
const path = process.argv[2]!;
const store = new SqliteStateStore({ path });
await store.migrate();
for (let k = 0; k < 3; k++) {
  let t = performance.now();
  const snap = { counters: await store.readCounters(), histograms: await store.readHistograms(), stacks: await store.listStacks(), lastUpdates: await store.readLastUpdates(), lastSuccesses: await store.readLastSuccesses(), inProgress: await store.listInProgress() };
  const tRead = performance.now() - t; t = performance.now();
  const samples = storeSamples(snap);
  const tSamples = performance.now() - t; t = performance.now();
  const text = renderFamilies(METRIC_DEFINITIONS.filter((d) => d.source !== 'process'), samples, 'prometheus');
  const tRender = performance.now() - t;
  console.log({ rows: snap.counters.length + snap.histograms.length, tRead, tSamples, tRender, len: text.length });
}
