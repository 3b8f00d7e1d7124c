import type { MetricDefinition } from './definitions.js';
import type { ExpositionFormat } from './negotiate-format.js';
import type { Sample } from './store-samples.js';

/*
 * Text of the store-backed families, written directly rather than through prom-client's
 * Registry, which wants a metric object per family and builds every line through several
 * intermediate arrays: at 10,000 stacks a scrape holds a hundred thousand samples. The lines
 * are those prom-client writes for the same samples (HELP/TYPE, escaping, family separators),
 * plus exemplars on OpenMetrics bucket lines.
 */

/** The families in the given order, each with HELP and TYPE even when it has no samples. */
export function renderFamilies(
  defs: readonly MetricDefinition[],
  samples: ReadonlyMap<string, readonly Sample[]>,
  format: ExpositionFormat,
): string {
  const openMetrics = format === 'openmetrics';
  const parts: string[] = [];
  for (const def of defs) {
    // OpenMetrics names a counter family without `_total`; its samples keep it.
    const family = openMetrics && def.type === 'counter' ? def.name.replace(/_total$/, '') : def.name;
    const lines = [`# HELP ${family} ${escapeText(def.help)}`, `# TYPE ${family} ${def.type}`];
    const counterSuffix = openMetrics && def.type === 'counter' ? '_total' : '';
    // The lines of one histogram series share their labels object: format it once.
    let lastLabels: object | undefined;
    let lastText = '';
    for (const s of samples.get(def.name) ?? []) {
      if (s.labels !== lastLabels) {
        lastLabels = s.labels;
        lastText = formatLabels(s.labels);
      }
      const labelText = s.le === undefined ? lastText : `${lastText}${lastText === '' ? '{' : ','}le="${s.le}"`;
      let line = `${s.metricName ?? family + counterSuffix}${labelText === '' ? '' : `${labelText}}`} ${formatValue(s.value)}`;
      if (openMetrics && s.exemplar !== undefined) {
        line += ` # {trace_id="${s.exemplar.traceId}"} ${formatValue(s.exemplar.value)} ${s.exemplar.timestamp}`;
      }
      lines.push(line);
    }
    parts.push(lines.join('\n'));
  }
  // prom-client separates families by a blank line in the Prometheus format; OpenMetrics forbids them.
  return parts.join(openMetrics ? '\n' : '\n\n');
}

/** `{a="x",b="y"` without the closing brace, so `le` can follow; '' without labels. */
function formatLabels(labels: Readonly<Record<string, string>>): string {
  let out = '';
  for (const name in labels) out += `${out === '' ? '{' : ','}${name}="${escapeLabelValue(labels[name] as string)}"`;
  return out;
}

const NEEDS_ESCAPE = /[\\\n"]/;

function escapeLabelValue(value: string): string {
  return NEEDS_ESCAPE.test(value) ? escapeText(value).replace(/"/g, '\\"') : value;
}

function escapeText(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (!Number.isFinite(value)) return value < 0 ? '-Inf' : '+Inf';
  return `${value}`;
}
