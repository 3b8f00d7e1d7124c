import { gunzipSync } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { StackRef } from '../../../src/domain/stack.js';
import { METRIC_DEFINITIONS } from '../../../src/metrics/definitions.js';
import type { ExpositionFormat } from '../../../src/metrics/negotiate-format.js';
import { StoreExposition } from '../../../src/metrics/store-exposition.js';
import { storeSeries, type StoreSnapshot } from '../../../src/metrics/store-samples.js';
import type { CounterRow, LastUpdateRow, StackRecord } from '../../../src/state/state-store.js';

const DEFS = METRIC_DEFINITIONS.filter((d) => d.source !== 'process');
const FORMATS: readonly ExpositionFormat[] = ['prometheus', 'openmetrics'];
const COUNTER = 'pulumi_updates_total';

const stack = (i: number): StackRef => ({ org: 'acme', project: `p${i % 3}`, stack: `s${i}` });
const labels = (i: number): Record<string, string> => ({ ...stack(i), kind: 'update', result: 'succeeded' });

function text(e: StoreExposition, format: ExpositionFormat): string {
  return Buffer.concat(e.pieces(format).map((p) => p.bytes)).toString('utf8');
}

/** The store's state in the test: counters and stack facts by stack index. */
interface Model {
  counters: Map<number, number>;
  stacks: Map<number, number>;
  lastUpdates: Map<number, number>;
}

function snapshot(m: Model, only?: { series: number[]; stacks: number[] }): StoreSnapshot {
  const counters: CounterRow[] = [...m.counters]
    .filter(([i]) => only === undefined || only.series.includes(i))
    .map(([i, value]) => ({ name: COUNTER, labels: labels(i), value }));
  const stacks: StackRecord[] = [...m.stacks]
    .filter(([i]) => only === undefined || only.stacks.includes(i))
    .map(([i, resourceCount]) => ({ ...stack(i), resourceCount, cursorVersion: 0, firstSeenMs: 0 }));
  const lastUpdates: LastUpdateRow[] = [...m.lastUpdates]
    .filter(([i]) => only === undefined || only.stacks.includes(i))
    .map(([i, endTime]) => ({ stack: stack(i), kind: 'update', result: 'succeeded', endTime }));
  return { counters, histograms: [], stacks, lastUpdates, lastSuccesses: [], inProgress: [] };
}

describe('StoreExposition', () => {
  it('after any updates, holds the bytes a reset from the whole state gives, in chunks of any size', () => {
    const change = fc.record({
      series: fc.array(fc.record({ i: fc.integer({ min: 0, max: 40 }), value: fc.option(fc.integer({ min: 0, max: 99 })) }), { maxLength: 6 }),
      stacks: fc.array(fc.record({ i: fc.integer({ min: 0, max: 40 }), resources: fc.option(fc.integer({ min: 0, max: 99 })) }), { maxLength: 6 }),
    });
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5 }), fc.array(change, { maxLength: 30 }), (chunkSamples, changes) => {
        const m: Model = { counters: new Map(), stacks: new Map(), lastUpdates: new Map() };
        const e = new StoreExposition(DEFS, chunkSamples);
        e.reset(storeSeries(snapshot(m)));
        for (const c of changes) {
          for (const s of c.series) {
            if (s.value === null) m.counters.delete(s.i);
            else m.counters.set(s.i, s.value);
          }
          for (const s of c.stacks) {
            if (s.resources === null) {
              m.stacks.delete(s.i);
              m.lastUpdates.delete(s.i);
            } else {
              m.stacks.set(s.i, s.resources);
              m.lastUpdates.set(s.i, 1_000 + s.resources);
            }
          }
          const series = c.series.map((s) => s.i);
          const stacks = c.stacks.map((s) => s.i);
          e.update(
            { series: series.map((i) => ({ name: COUNTER, labels: labels(i) })), stacks: stacks.map(stack) },
            storeSeries(snapshot(m, { series, stacks })),
          );
        }
        const full = new StoreExposition(DEFS, chunkSamples);
        full.reset(storeSeries(snapshot(m)));
        for (const format of FORMATS) expect(text(e, format)).toBe(text(full, format));
      }),
      { numRuns: 200 },
    );
  });

  it('gives gzip members that read as one stream of its bytes', async () => {
    const e = new StoreExposition(DEFS, 2);
    const counters = new Map(Array.from({ length: 20 }, (_, i) => [i, i] as [number, number]));
    e.reset(storeSeries(snapshot({ counters, stacks: new Map([[1, 4]]), lastUpdates: new Map() })));
    const pieces = e.pieces('prometheus');
    expect(pieces.length).toBeGreaterThan(10);
    const gz = Buffer.concat(await Promise.all(pieces.map((p) => p.gzip())));
    expect(gunzipSync(gz).toString('utf8')).toBe(text(e, 'prometheus'));
  });
});
