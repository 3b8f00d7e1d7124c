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

/**
 * A family's HELP and TYPE lines, each ending in a newline. Families are separated by a
 * blank line in the Prometheus format (as prom-client writes them); OpenMetrics forbids them,
 * so `first` says whether one goes before this family.
 */
export function renderFamilyHead(def: MetricDefinition, format: ExpositionFormat, first: boolean): string {
  const family = familyName(def, format);
  return `${first || format === 'openmetrics' ? '' : '\n'}# HELP ${family} ${escapeText(def.help)}\n# TYPE ${family} ${def.type}\n`;
}

/** What follows the last family: the blank line that ends the Prometheus format's last family. */
export function renderExpositionTail(format: ExpositionFormat): string {
  return format === 'openmetrics' ? '' : '\n';
}

/** The lines of some samples of one family, each ending in a newline. */
export function renderSamples(def: MetricDefinition, samples: readonly Sample[], format: ExpositionFormat): string {
  const openMetrics = format === 'openmetrics';
  const name = familyName(def, format) + (openMetrics && def.type === 'counter' ? '_total' : '');
  let out = '';
  // The lines of one histogram series share their labels object: format it once.
  let lastLabels: object | undefined;
  let lastText = '';
  for (const s of samples) {
    if (s.labels !== lastLabels) {
      lastLabels = s.labels;
      lastText = formatLabels(s.labels);
    }
    const labelText = s.le === undefined ? lastText : `${lastText}${lastText === '' ? '{' : ','}le="${s.le}"`;
    out += `${s.metricName ?? name}${labelText === '' ? '' : `${labelText}}`} ${formatValue(s.value)}`;
    if (openMetrics && s.exemplar !== undefined) {
      out += ` # {trace_id="${s.exemplar.traceId}"} ${formatValue(s.exemplar.value)} ${s.exemplar.timestamp}`;
    }
    out += '\n';
  }
  return out;
}

/** OpenMetrics names a counter family without `_total`; its samples keep it. */
function familyName(def: MetricDefinition, format: ExpositionFormat): string {
  return format === 'openmetrics' && def.type === 'counter' ? def.name.replace(/_total$/, '') : def.name;
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
