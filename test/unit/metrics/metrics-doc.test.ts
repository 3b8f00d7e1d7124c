import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { METRIC_DEFINITIONS } from '../../../src/metrics/definitions.js';
import { ExporterMetrics } from '../../../src/metrics/exporter-metrics.js';
import { memoryStore } from '../../helpers/memory-store.js';
import { exerciseSelfMetrics, seedStore } from './seed-store.js';

interface Described {
  name: string;
  type: string;
  labels: string[];
  optional: string[];
}

const DOC = readFileSync(new URL('../../../docs/metrics.md', import.meta.url), 'utf8');

function documentedMetrics(): Described[] {
  const rows: Described[] = [];
  for (const m of DOC.matchAll(/^\| `([a-z_]+)` \| (counter|gauge|histogram|summary) \| ([^|]*) \| [^|]* \|$/gm)) {
    const labels: string[] = [];
    const optional: string[] = [];
    for (const raw of (m[3] ?? '').split(',').map((s) => s.trim())) {
      if (raw === '—' || raw === '') continue;
      const opt = /^\[`([a-z_]+)`\]$/.exec(raw);
      const req = /^`([a-z_]+)`$/.exec(raw);
      if (opt?.[1]) optional.push(opt[1]);
      else if (req?.[1]) labels.push(req[1]);
      else throw new Error(`docs/metrics.md: cannot read label cell entry "${raw}" of ${m[1]}`);
    }
    rows.push({ name: m[1] ?? '', type: m[2] ?? '', labels, optional });
  }
  return rows;
}

function defined(): Described[] {
  return METRIC_DEFINITIONS.map((d) => ({
    name: d.name,
    type: d.type,
    labels: [...d.labelNames],
    optional: [...(d.optionalLabelNames ?? [])],
  }));
}

const byName = (a: Described, b: Described): number => (a.name < b.name ? -1 : 1);

describe('docs/metrics.md', () => {
  it('lists every defined metric with its type and labels, and nothing else', () => {
    const documented = documentedMetrics();
    expect(documented.length).toBeGreaterThan(0);
    expect([...documented].sort(byName)).toEqual(defined().sort(byName));
  });

  it('lists the bucket bounds of every histogram as defined', () => {
    const documented = new Map(
      [...DOC.matchAll(/^\| `([a-z_]+)` \| ([\d., ]+) \|$/gm)].map((m) => [m[1], (m[2] ?? '').split(',').map((s) => Number(s.trim()))]),
    );
    const histograms = METRIC_DEFINITIONS.filter((d) => d.type === 'histogram');
    expect(new Map(histograms.map((d) => [d.name, [...(d.buckets ?? [])]]))).toEqual(documented);
  });
});

describe('metric definitions against the served exposition', () => {
  it('serves exactly the defined families, with the defined types and label names', async () => {
    const store = await memoryStore();
    await seedStore(store);
    const metrics = new ExporterMetrics({ store, version: '1.0.0', revision: 'abc' });
    exerciseSelfMetrics(metrics);
    const { body } = await metrics.render();

    const families = new Map([...body.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1], m[2]]));
    expect(families).toEqual(new Map(METRIC_DEFINITIONS.map((d) => [d.name, d.type])));

    for (const def of METRIC_DEFINITIONS) {
      const sampleNames =
        def.type === 'histogram'
          ? [`${def.name}_bucket`, `${def.name}_sum`, `${def.name}_count`]
          : def.type === 'summary'
            ? [`${def.name}_sum`, `${def.name}_count`]
            : [def.name];
      const labelSets = [...body.matchAll(/^([a-z_]+)(?:\{(.*)\})? \S+$/gm)]
        .filter((m) => sampleNames.includes(m[1] ?? ''))
        .map((m) => [...(m[2] ?? '').matchAll(/([a-z_]+)="/g)].map((l) => l[1]).filter((l) => l !== 'le').sort());
      // The seed store and exerciseSelfMetrics give every family at least one sample.
      expect(labelSets.length, `${def.name} has samples`).toBeGreaterThan(0);
      for (const labels of labelSets) expect(labels, def.name).toEqual([...def.labelNames].sort());
    }
  });

  it('registers each self-metric in the private registry with the defined labels', async () => {
    const metrics = new ExporterMetrics({ store: await memoryStore(), version: '1.0.0', revision: 'abc' });
    const registered = metrics.registry
      .getMetricsAsArray()
      .map((m) => {
        const metric = m as unknown as { name: string; type: string; labelNames: string[] };
        return { name: metric.name, type: metric.type, labels: [...metric.labelNames], optional: [] as string[] };
      })
      .sort(byName);
    expect(registered).toEqual(defined().filter((d) => METRIC_DEFINITIONS.find((x) => x.name === d.name)?.source === 'process').sort(byName));
  });

  it('uses base units and keeps _total for counters only', () => {
    for (const def of METRIC_DEFINITIONS) {
      expect(def.name.endsWith('_total'), def.name).toBe(def.type === 'counter');
      expect(def.name, def.name).not.toMatch(/_(milliseconds|ms|minutes|hours|count)$/);
      expect(def.name, def.name).toMatch(def.source === 'process' ? /^pulumi_exporter_/ : /^pulumi_(?!exporter_)/);
      // OpenMetrics HELP text must escape quotes and backslashes; keep them out.
      expect(def.help, def.name).not.toMatch(/["\\\n]/);
    }
  });
});
