import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { METRIC_DEFINITIONS } from '../../../src/metrics/definitions.js';
import { requireTool } from '../../helpers/processes.js';
import { allPanels, labelValuesQuery, readDashboard } from './dashboard-model.js';
import { checkPromql, type Labels, type Selector, type SeriesCatalog } from './promql-labels.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const RULES = 'deploy/prometheus/alerts.yml';
const RULE_TESTS = 'deploy/prometheus/alerts.test.yml';
const OPERATIONS_DOC = 'docs/operations.md';

// Under CI a missing promtool fails this file (requireTool throws); locally those tests skip.
const havePromtool = requireTool('promtool');

/** Labels Prometheus attaches to every scraped series. */
const TARGET_LABELS = ['job', 'instance'];

interface Rule {
  readonly record?: string;
  readonly alert?: string;
  readonly expr: string;
  readonly for?: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
}

interface RuleTestFile {
  readonly tests: readonly {
    readonly name: string;
    readonly alert_rule_test?: readonly { readonly alertname: string; readonly exp_alerts: readonly unknown[] }[];
    readonly promql_expr_test?: readonly { readonly expr: string }[];
  }[];
}

function read(path: string): string {
  return readFileSync(join(ROOT, path), 'utf8');
}

const rules: readonly Rule[] = (parse(read(RULES)) as { groups: { rules: Rule[] }[] }).groups.flatMap((g) => g.rules);
const alerts = rules.filter((r): r is Rule & { alert: string } => r.alert !== undefined);
const recordings = rules.filter((r): r is Rule & { record: string } => r.record !== undefined);
const dashboard = readDashboard();

/**
 * Every series the exporter serves, with the labels it carries once scraped under the default
 * configuration: a rule or panel that matched on an opt-in label (say `stack` on a duration
 * histogram) would silently find nothing for most users.
 */
function metricCatalog(): Map<string, Labels> {
  const catalog = new Map<string, Labels>();
  for (const def of METRIC_DEFINITIONS) {
    const labels = [...def.labelNames, ...TARGET_LABELS];
    if (def.type === 'histogram') {
      catalog.set(`${def.name}_bucket`, new Set([...labels, 'le']));
      catalog.set(`${def.name}_sum`, new Set(labels));
      catalog.set(`${def.name}_count`, new Set(labels));
    } else if (def.type === 'summary') {
      catalog.set(`${def.name}_sum`, new Set(labels));
      catalog.set(`${def.name}_count`, new Set(labels));
    } else {
      catalog.set(def.name, new Set(labels));
    }
  }
  return catalog;
}

/** The metric catalog plus what each recording rule records, in evaluation order. */
function checkRules(): { catalog: SeriesCatalog; problems: string[]; alertLabels: Map<string, Labels | undefined> } {
  const catalog = metricCatalog();
  const problems: string[] = [];
  const alertLabels = new Map<string, Labels | undefined>();
  for (const rule of rules) {
    const name = rule.record ?? rule.alert ?? '(unnamed rule)';
    const check = checkPromql(rule.expr, catalog);
    problems.push(...check.problems.map((p) => `${name}: ${p}`));
    if (rule.record) catalog.set(rule.record, check.labels ?? new Set());
    if (rule.alert) alertLabels.set(rule.alert, check.labels);
  }
  return { catalog, problems, alertLabels };
}

/** `pulumi_…` names in free text (not the middle of a recorded series name). */
function metricNamesIn(text: string): string[] {
  return [...text.matchAll(/(?<![\w:])pulumi_[a-z_]+(?![\w:])/g)].map((m) => m[0]);
}

const panels = allPanels(dashboard.panels);
const queryPanels = panels.filter((p) => p.type !== 'row');
const targets = queryPanels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p, target: t })));
const queryVariables = dashboard.templating.list.filter((v) => v.type === 'query');

function runPromtool(args: string[]): { status: number | null; output: string } {
  const r = spawnSync('promtool', args, { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

const tmpDirs: string[] = [];
afterAll(() => {
  for (const dir of tmpDirs) rmSync(dir, { recursive: true, force: true });
});

describe('Prometheus rules (deploy/prometheus/alerts.yml)', () => {
  it.runIf(havePromtool)('pass promtool check rules without a warning', () => {
    const { status, output } = runPromtool(['check', 'rules', RULES]);
    expect(output).toMatch(/SUCCESS: \d+ rules found/);
    expect(output).not.toMatch(/warn|error|fail/i);
    expect(status).toBe(0);
  });

  it.runIf(havePromtool)('pass every promtool unit test in alerts.test.yml', () => {
    const { status, output } = runPromtool(['test', 'rules', RULE_TESTS]);
    expect(output).toContain('SUCCESS');
    expect(output).not.toContain('FAILED');
    expect(status).toBe(0);
    // promtool evaluates every rule test in one process: about 20 s on a loaded 2-core machine.
  }, 90_000);

  it('select only metrics the exporter defines, with labels those metrics carry', () => {
    expect(rules.length).toBeGreaterThan(0);
    expect(checkRules().problems).toEqual([]);
  });

  it('give every alert a for duration, a severity, and a summary and description that name only labels the alert has', () => {
    const { alertLabels } = checkRules();
    const problems: string[] = [];
    for (const alert of alerts) {
      if (!alert.for || !/^\d+[smhd]$/.test(alert.for)) problems.push(`${alert.alert}: no for duration`);
      if (!['critical', 'warning', 'info'].includes(alert.labels?.['severity'] ?? '')) problems.push(`${alert.alert}: no severity`);
      const { summary, description } = alert.annotations ?? {};
      if (!summary || !description) problems.push(`${alert.alert}: no summary or description`);
      const have = alertLabels.get(alert.alert) ?? new Set<string>();
      for (const text of [summary ?? '', description ?? '', ...Object.values(alert.labels ?? {})]) {
        for (const [, label] of text.matchAll(/\$labels\.([A-Za-z_]\w*)/g)) {
          if (!have.has(label!)) problems.push(`${alert.alert}: template uses $labels.${label}, the alert has {${[...have].join(', ')}}`);
        }
      }
    }
    expect(alerts.length).toBeGreaterThan(0);
    expect(problems).toEqual([]);
  });

  it('mention only existing metrics in their annotations', () => {
    const known = new Set(METRIC_DEFINITIONS.map((d) => d.name));
    const mentioned = alerts.flatMap((a) => Object.values(a.annotations ?? {}).flatMap(metricNamesIn));
    expect(mentioned.length).toBeGreaterThan(0);
    expect(mentioned.filter((m) => !known.has(m))).toEqual([]);
  });

  it('have a promtool test where each alert fires and one where it stays silent, and a test of each recording', () => {
    const tests = (parse(read(RULE_TESTS)) as RuleTestFile).tests;
    const alertTests = tests.flatMap((t) => t.alert_rule_test ?? []);
    const exprTests = tests.flatMap((t) => t.promql_expr_test ?? []);
    const untested = [
      ...alerts.filter((a) => !alertTests.some((t) => t.alertname === a.alert && t.exp_alerts.length > 0)).map((a) => `${a.alert} never fires`),
      ...alerts.filter((a) => !alertTests.some((t) => t.alertname === a.alert && t.exp_alerts.length === 0)).map((a) => `${a.alert} never stays silent`),
      ...recordings.filter((r) => !exprTests.some((t) => t.expr.includes(r.record))).map((r) => `${r.record} has no expression test`),
    ];
    expect(untested).toEqual([]);
  });

  it('are each explained in docs/operations.md', () => {
    const doc = read(OPERATIONS_DOC);
    expect(alerts.map((a) => a.alert).filter((name) => !doc.includes(`\`${name}\``))).toEqual([]);
  });
});

describe('Grafana dashboard (deploy/grafana/pulumi-update-exporter.json)', () => {
  it('is a schema 39 dashboard with a uid and unique panel ids', () => {
    expect(dashboard.schemaVersion).toBe(39);
    expect(dashboard.uid).toMatch(/^[\w-]{1,40}$/);
    const ids = panels.map((p) => p.id);
    expect(ids.every((id) => Number.isInteger(id) && id > 0)).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    expect(targets.length).toBeGreaterThan(20);
  });

  it('takes every panel, query and template variable from the datasource variable', () => {
    const dsVariable = dashboard.templating.list.find((v) => v.name === 'datasource');
    expect(dsVariable).toMatchObject({ type: 'datasource', query: 'prometheus' });
    const expected = { type: 'prometheus', uid: '${datasource}' };
    const offenders = [
      ...queryPanels.filter((p) => p.datasource?.uid !== expected.uid || p.datasource.type !== expected.type).map((p) => `panel ${p.title}`),
      ...targets.filter(({ target }) => target.datasource?.uid !== expected.uid).map(({ panel, target }) => `${panel.title} ${target.refId}`),
      ...queryVariables.filter((v) => v.datasource?.uid !== expected.uid).map((v) => `variable ${v.name}`),
    ];
    expect(offenders).toEqual([]);
  });

  it('queries only metrics the exporter defines, with labels those metrics carry, without needing the recording rules', () => {
    const catalog = metricCatalog();
    const problems: string[] = [];
    for (const { panel, target } of targets) {
      const check = checkPromql(target.expr, catalog);
      problems.push(...check.problems.map((p) => `${panel.title} ${target.refId}: ${p}`));
      // Free-text scan as well, so a name the parser would not see as a selector is caught too.
      for (const name of metricNamesIn(target.expr)) if (!catalog.has(name)) problems.push(`${panel.title}: ${name}`);
    }
    for (const v of queryVariables) {
      const q = labelValuesQuery(v);
      if (!q) {
        problems.push(`variable ${v.name}: not a label_values(selector, label) query`);
        continue;
      }
      const check = checkPromql(q.selector, catalog);
      problems.push(...check.problems.map((p) => `variable ${v.name}: ${p}`));
      if (!check.labels?.has(q.label)) problems.push(`variable ${v.name}: ${q.label} is not a label of ${q.selector}`);
    }
    expect(problems).toEqual([]);
  });

  it('filters stack data by the org, project and stack variables and self-metrics by instance', () => {
    const byName = new Map(METRIC_DEFINITIONS.map((d) => [d.name, d]));
    const definitionOf = (series: string) => byName.get(series) ?? byName.get(series.replace(/_(bucket|sum|count)$/, ''));
    const uses = (s: Selector, label: string) => s.matchers.some((m) => m.label === label && m.op === '=~' && m.value === `$${label}`);
    const unfiltered: string[] = [];
    for (const { panel, target } of targets) {
      for (const s of checkPromql(target.expr, metricCatalog()).selectors) {
        const def = definitionOf(s.name);
        if (!def) continue;
        const wanted =
          def.source === 'process'
            ? def.labelNames.includes('org') ? ['org'] : ['instance']
            : ['org', 'project', 'stack', 'kind'].filter((l) => def.labelNames.includes(l));
        for (const label of wanted) if (!uses(s, label)) unfiltered.push(`${panel.title} ${target.refId}: ${s.name} without ${label}=~"$${label}"`);
      }
    }
    expect(unfiltered).toEqual([]);
    expect(dashboard.templating.list.map((v) => v.name)).toEqual(expect.arrayContaining(['datasource', 'org', 'project', 'stack', 'kind', 'instance']));
  });

  it.runIf(havePromtool)('has only queries that promtool accepts as PromQL', () => {
    // Grafana's range macros replaced by durations; $variables sit inside strings and stay.
    const macro = (expr: string) => expr.replaceAll('$__rate_interval', '2m').replaceAll('$__interval', '1d').replaceAll('$__range', '7d');
    const asRules = {
      groups: [
        {
          name: 'dashboard',
          rules: [
            ...targets.map(({ panel, target }) => ({ record: `dashboard:panel_${panel.id}:${target.refId}`, expr: macro(target.expr) })),
            ...queryVariables.map((v) => ({ record: `dashboard:variable:${v.name}`, expr: labelValuesQuery(v)?.selector ?? '' })),
          ],
        },
      ],
    };
    const dir = mkdtempSync(join(tmpdir(), 'dashboard-promql-'));
    tmpDirs.push(dir);
    const file = join(dir, 'dashboard.rules.yml');
    writeFileSync(file, stringify(asRules));
    const { status, output } = runPromtool(['check', 'rules', file]);
    expect(output).toContain(`SUCCESS: ${asRules.groups[0]!.rules.length} rules found`);
    expect(status).toBe(0);
  });

  it('links per-stack panels to the stack’s traces with only variables the dashboard defines or Grafana provides', () => {
    const defined = new Set(dashboard.templating.list.map((v) => v.name));
    const builtin = /^(__from|__to|__data\.fields\.\w+|__field\.labels\.\w+)$/;
    const problems: string[] = [];
    const linked = panels.filter((p) => (p.fieldConfig?.defaults?.links ?? []).length > 0);
    for (const p of linked) {
      const labels = new Set(checkPromql(p.targets?.[0]?.expr ?? '', metricCatalog()).labels ?? []);
      for (const link of p.fieldConfig!.defaults!.links!) {
        for (const [, name] of `${link.title} ${link.url}`.matchAll(/\$\{([^}:]+)(?::\w+)?\}/g)) {
          if (!defined.has(name!) && !builtin.test(name!)) problems.push(`${p.title}: ${link.title} uses \${${name}}`);
          // A row's or line's field must be a label the panel's query keeps.
          const field = /^__(?:data\.fields|field\.labels)\.(\w+)$/.exec(name!)?.[1];
          if (field && !labels.has(field)) problems.push(`${p.title}: ${link.title} reads ${field}, which the query drops`);
        }
      }
      // Tables name a row's fields, time series a line's labels.
      const style = p.type === 'table' ? '__data.fields.' : '__field.labels.';
      if (!p.fieldConfig!.defaults!.links!.every((l) => l.url.includes(style))) problems.push(`${p.title}: links do not use ${style}`);
    }
    expect(linked.length).toBeGreaterThanOrEqual(5);
    expect(problems).toEqual([]);
    const textboxes = dashboard.templating.list.filter((v) => v.type === 'textbox');
    expect(textboxes.map((v) => [v.name, v.query])).toEqual([['jaeger_url', 'http://localhost:16686'], ['trace_service', 'pulumi']]);
    expect(dashboard.templating.list.find((v) => v.name === 'tempo')).toMatchObject({ type: 'datasource', query: 'tempo' });
  });

  it('places panels on the 24-column grid without overlaps', () => {
    const placed = queryPanels.concat(panels.filter((p) => p.type === 'row'));
    const problems: string[] = [];
    for (const [i, a] of placed.entries()) {
      const g = a.gridPos;
      if (g.x < 0 || g.w < 1 || g.x + g.w > 24 || g.h < 1) problems.push(`${a.title} is off the grid`);
      for (const b of placed.slice(i + 1)) {
        const o = b.gridPos;
        if (g.x < o.x + o.w && o.x < g.x + g.w && g.y < o.y + o.h && o.y < g.y + g.h) problems.push(`${a.title} overlaps ${b.title}`);
      }
    }
    expect(problems).toEqual([]);
  });
});

describe('Grafana provisioning examples (deploy/grafana/provisioning)', () => {
  interface DataSource {
    name: string;
    type: string;
    uid: string;
    url: string;
    isDefault?: boolean;
    jsonData?: {
      exemplarTraceIdDestinations?: { name: string; datasourceUid?: string; url?: string }[];
      tracesToMetrics?: { datasourceUid: string; tags: { key: string; value?: string }[]; queries: { name: string; query: string }[] };
    };
  }
  const datasources = (parse(read('deploy/grafana/provisioning/datasources.yml')) as { apiVersion: number; datasources: DataSource[] }).datasources;
  const [prometheus, ...traceStores] = datasources;
  const links = prometheus?.jsonData?.exemplarTraceIdDestinations ?? [];

  it('provision a dashboard directory, a default Prometheus data source and the trace stores its exemplars link to', () => {
    const dashboards = parse(read('deploy/grafana/provisioning/dashboards.yml')) as { apiVersion: number; providers: { type: string; options: { path: string } }[] };
    expect(dashboards.apiVersion).toBe(1);
    expect(dashboards.providers).toEqual([expect.objectContaining({ type: 'file', options: expect.objectContaining({ path: expect.stringMatching(/^\//) }) })]);
    expect(prometheus).toEqual(expect.objectContaining({ type: 'prometheus', isDefault: true, url: expect.stringMatching(/^https?:\/\//) }));
    expect(traceStores.map((d) => d.type)).toEqual(['jaeger', 'tempo']);
    expect(traceStores.every((d) => d.isDefault !== true)).toBe(true);
    // Every exemplar link reads the label the exporter writes (trace_id) and leads to a provisioned trace store or a URL.
    expect(new Set(links.map((l) => l.name))).toEqual(new Set(['trace_id']));
    expect(links.filter((l) => l.datasourceUid !== undefined).map((l) => l.datasourceUid)).toEqual(traceStores.map((d) => d.uid));
  });

  it('link exemplars to the same trace URL the compose exporter gives the status page', () => {
    const compose = parse(read('docker-compose.yml')) as { services: Record<string, { environment?: Record<string, string> }> };
    const template = compose.services['exporter']?.environment?.['EXPORTER_TRACE_LINK_TEMPLATE'] ?? '';
    expect(template).toContain('{traceId}');
    // Grafana reads $$ in provisioning files as a literal $.
    const urls = links.filter((l) => l.url !== undefined).map((l) => l.url!.replaceAll('$$', '$'));
    expect(urls).toEqual([template.replace('{traceId}', '${__value.raw}')]);
  });

  it('link the traces of both trace stores back to the stack metrics with queries on labels the metrics carry', () => {
    const catalog = metricCatalog();
    const problems: string[] = [];
    for (const store of traceStores) {
      const t = store.jsonData?.tracesToMetrics;
      expect(t?.datasourceUid, store.name).toBe(prometheus?.uid);
      // The resource attributes of every exported trace (shared telemetry-conventions.md, Traces), as metric labels.
      expect(t?.tags, store.name).toEqual([
        { key: 'pulumi.org', value: 'org' },
        { key: 'pulumi.project', value: 'project' },
        { key: 'pulumi.stack', value: 'stack' },
      ]);
      expect(t?.queries.length, store.name).toBeGreaterThan(0);
      for (const q of t?.queries ?? []) {
        const expr = q.query.replaceAll('$$__tags', 'org="o", project="p", stack="s"');
        problems.push(...checkPromql(expr, catalog).problems.map((p) => `${store.name} ${q.name}: ${p}`));
      }
    }
    expect(problems).toEqual([]);
  });
});

describe('the PromQL label checker', () => {
  const catalog = metricCatalog();

  it.each([
    ['pulumi_nope_total', 'unknown metric pulumi_nope_total'],
    ['pulumi_update_duration_seconds', 'unknown metric pulumi_update_duration_seconds'],
    ['pulumi_updates_total{stak="prod"}', 'label "stak"'],
    ['sum by (le) (pulumi_updates_total)', 'label "le"'],
    ['histogram_quantile(0.9, sum by (le) (rate(pulumi_update_duration_seconds_sum[5m])))', 'label "le"'],
    ['pulumi_stack_resources / pulumi_stack_last_update_success', 'no series would match'],
    ['pulumi_stack_resources and on (kind) pulumi_stack_last_update_success', 'label "kind"'],
    ['sum by (org) (pulumi_stack_resources) > on (org) group_left (policy) pulumi_updates_total', 'label "policy"'],
    ['frobnicate(pulumi_updates_total)', 'unknown function frobnicate()'],
    ['sum(pulumi_updates_total', 'cannot parse'],
  ])('reports %s', (expr, problem) => {
    const { problems } = checkPromql(expr, catalog);
    expect(problems.join('\n')).toContain(problem);
  });

  it('infers the labels of aggregations and joins as Prometheus does', () => {
    const labels = (expr: string) => [...(checkPromql(expr, catalog).labels ?? [])].sort();
    expect(labels('sum without (result, job, instance) (pulumi_updates_total)')).toEqual(['kind', 'org', 'project', 'stack']);
    expect(labels('max by (org, kind) (pulumi_stack_last_update_success) > on (org) sum by (org) (pulumi_stack_resources)')).toEqual(['org']);
    expect(labels('pulumi_stack_last_update_success and on (org) pulumi_stack_resources')).toContain('kind');
    expect(labels('histogram_quantile(0.5, sum by (le, kind) (rate(pulumi_update_duration_seconds_bucket[1h])))')).toEqual(['kind']);
    expect(checkPromql('time() - 14 * 86400', catalog).labels).toBeUndefined();
    expect(checkPromql('max by (org) (pulumi_stack_resources) or sum by (org) (pulumi_updates_total)', catalog).problems).toEqual([]);
  });
});
