import { readFileSync, writeFileSync } from 'node:fs';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../../src/app.js';
import { traceIdFor } from '../../../src/conversion/trace-ids.js';
import type { RunningSimulator } from '../../../src/simulator/simulator.js';
import type { SimulatorTruth, TruthStack, TruthUpdate } from '../../../src/simulator/simulator-truth.js';
import { buildApp, configFor, startTestSimulator, tempDir } from '../../helpers/e2e.js';
import { startOtlpReceiver, type DecodedSpan, type OtlpReceiver } from '../../helpers/otlp-receiver.js';
import { eventually, freePort, requireTool, spawnProcess, type Spawned } from '../../helpers/processes.js';
import { allPanels, labelValuesQuery, panelTargets, readDashboard, ROOT, type Panel, type Target } from './dashboard-model.js';

/**
 * Every query of the Grafana dashboard, run by a real Prometheus against what it scraped from
 * the real exporter reading the bundled simulator: each must parse and find data, and the key
 * panels must show the simulator's ground truth. The exporter first exports the whole history;
 * Prometheus then watches while new updates complete (so increase() and rate() have something
 * to measure), an update keeps running, a span export fails once and a request is retried.
 */

const SCRAPE_SECONDS = 1;
/**
 * increase() extrapolates each series to the ends of its window, but no further back than the
 * counter would have been 0, so over a window of a few seconds the two sides of a ratio are not
 * stretched alike: a mean or a ratio can be off by about one scrape interval over the window
 * (here up to ~10%). Over the dashboard's day-long windows the difference vanishes.
 */
const RATIO_TOLERANCE = 0.15;
const havePrometheus = requireTool('prometheus');
const dashboard = readDashboard();
const targets = panelTargets(dashboard);

type Labels = Record<string, string>;
interface VectorSample {
  metric: Labels;
  value: [number, string];
}
interface MatrixSeries {
  metric: Labels;
  values: [number, string][];
}
interface Exemplar {
  labels: Labels;
  value: string;
  timestamp: number;
}

const completed = (u: TruthUpdate): boolean => u.result !== 'in-progress';
const key = (...parts: string[]): string => parts.join('/');
/** A single selected value as Grafana writes it into a regex matcher: escaped for the regex, then for the PromQL string. */
const regexEscape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\\\$&');

function allUpdates(truth: SimulatorTruth): { stack: TruthStack; update: TruthUpdate }[] {
  return truth.stacks.flatMap((stack) => stack.updates.map((update) => ({ stack, update })));
}

/** The newest completed update of each stack and kind, as the exporter's gauges pick it (latest end time). */
function newestByKind(truth: SimulatorTruth): Map<string, { stack: TruthStack; update: TruthUpdate }> {
  const newest = new Map<string, { stack: TruthStack; update: TruthUpdate }>();
  for (const { stack, update } of allUpdates(truth).filter(({ update }) => completed(update))) {
    const k = key(stack.org, stack.project, stack.stack, update.kind);
    const seen = newest.get(k)?.update;
    if (!seen || update.endTime! > seen.endTime! || (update.endTime === seen.endTime && update.version > seen.version)) newest.set(k, { stack, update });
  }
  return newest;
}

/** Grafana's interpolation of a panel query: its range macros, then the template variables. */
function interpolate(expr: string, vars: Readonly<Record<string, string>>, macros: Readonly<Record<string, string>>): string {
  let out = expr;
  for (const name of ['__rate_interval', '__interval', '__range']) out = out.replaceAll(`$${name}`, macros[name]!);
  out = out.replace(/\$\{(\w+)\}|\$(\w+)/g, (whole, braced: string | undefined, bare: string | undefined) => vars[braced ?? bare ?? ''] ?? whole);
  if (out.includes('$')) throw new Error(`unreplaced variable in ${out}`);
  return out;
}

describe.runIf(havePrometheus)('the Grafana dashboard on a real Prometheus scraping the exporter', () => {
  const tmp = tempDir('pue-dashboard-');
  let sim: RunningSimulator;
  let receiver: OtlpReceiver;
  let app: App;
  let prometheus: Spawned;
  let promUrl: string;
  let before: SimulatorTruth;
  let after: SimulatorTruth;
  /** The updates that completed while Prometheus watched. */
  let added: { stack: TruthStack; update: TruthUpdate }[];
  /** The dashboard's time range: from Prometheus' start to after the last scrape that matters. */
  let from: number;
  let to: number;
  let instance: string;

  async function api<T>(path: string, params: Record<string, string | number>): Promise<T> {
    const search = new URLSearchParams(Object.entries(params).map(([k, v]): [string, string] => [k, String(v)]));
    const res = await fetch(`${promUrl}/api/v1/${path}?${search.toString()}`);
    const json = (await res.json()) as { status: string; data: T; error?: string };
    if (json.status !== 'success') throw new Error(`${path} answered ${res.status}: ${json.error ?? 'no error text'}`);
    return json.data;
  }
  const scalar = async (query: string): Promise<number | undefined> => {
    const v = (await api<{ result: VectorSample[] }>('query', { query, time: Date.now() / 1000 })).result[0]?.value[1];
    return v === undefined ? undefined : Number(v);
  };

  /** What Grafana sends for a target: an instant query at the range's end, or a range query on a step-aligned grid. */
  async function runTarget(panel: Panel, target: Target, vars: Readonly<Record<string, string>>): Promise<MatrixSeries[]> {
    // Grafana: interval = max(panel min interval, data source scrape interval, range / max data points);
    // $__rate_interval = max($__interval + scrape interval, 4 * scrape interval).
    const step = panel.interval === '1d' ? 86_400 : Math.max(SCRAPE_SECONDS, Math.ceil((to - from) / 1000));
    if (panel.interval !== undefined && panel.interval !== '1d') throw new Error(`${panel.title}: interval ${panel.interval} not handled by this test`);
    const macros = {
      __interval: `${step}s`,
      __rate_interval: `${Math.max(step + SCRAPE_SECONDS, 4 * SCRAPE_SECONDS)}s`,
      __range: `${to - from}s`,
    };
    const query = interpolate(target.expr, vars, macros);
    if (target.instant) {
      return (await api<{ result: VectorSample[] }>('query', { query, time: to })).result.map((s) => ({ metric: s.metric, values: [s.value] }));
    }
    const start = Math.floor(from / step) * step;
    const end = Math.ceil(to / step) * step;
    return (await api<{ result: MatrixSeries[] }>('query_range', { query, start, end, step })).result;
  }

  const ALL = { org: '.*', project: '.*', stack: '.*', kind: '.*' };
  const withAll = (): Record<string, string> => ({ ...ALL, instance: regexEscape(instance), datasource: 'prometheus' });
  const target = (title: string, refId = 'A'): { panel: Panel; target: Target } => {
    const found = targets.find((t) => t.panel.title === title && t.target.refId === refId);
    if (!found) throw new Error(`no panel "${title}" with query ${refId}`);
    return found;
  };

  beforeAll(async () => {
    // The simulator's clock half a day back, so that the updates added below end before the
    // wall clock, as real ones do (exemplars carry the update's end time).
    sim = await startTestSimulator({ seed: 11, nowSeconds: Math.floor(Date.now() / 1000) - 12 * 3600 });
    receiver = await startOtlpReceiver();
    app = buildApp(
      configFor(sim, `${tmp.dir}/state.db`, { traces: { exporter: 'otlp', endpoint: receiver.url, timeoutMillis: 5_000 } }),
      true,
    );
    await app.start();
    // A retried request before Prometheus starts, so the retries series exists when it watches.
    sim.faults.add({ kind: '503', endpoint: 'listUpdates', count: 1 });
    expect((await app.runOnce()).result).toBe('success');
    before = sim.truth();

    instance = new URL(app.httpUrl()!).host;
    const port = await freePort();
    promUrl = `http://127.0.0.1:${port}`;
    writeFileSync(
      `${tmp.dir}/prometheus.yml`,
      `global:\n  scrape_interval: ${SCRAPE_SECONDS}s\nscrape_configs:\n  - job_name: pulumi-update-exporter\n    static_configs:\n      - targets: ['${instance}']\n`,
    );
    from = Math.floor(Date.now() / 1000);
    prometheus = spawnProcess('prometheus', [
      `--config.file=${tmp.dir}/prometheus.yml`,
      `--storage.tsdb.path=${tmp.dir}/tsdb`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--enable-feature=exemplar-storage',
    ]);
    const total = (t: SimulatorTruth): number => allUpdates(t).filter(({ update }) => completed(update)).length;
    const seen = (n: number) => async () => ((await scalar('sum(pulumi_updates_total)')) === n ? true : undefined);
    await eventually(seen(total(before)), 60_000, `Prometheus to scrape the backfilled exporter (${prometheus.output().slice(-500)})`);
    // A few scrapes of the old values, so increase() sees the new updates as increases.
    await new Promise((r) => setTimeout(r, 4_000 * SCRAPE_SECONDS));

    // New updates on stacks and kind/result pairs that already have series, one running update,
    // one retried request and one trace the collector refuses once.
    const generated = before.stacks.filter((s) => s.project !== 'pulumi-samples');
    const plan: { stack: TruthStack; result: 'succeeded' | 'failed' }[] = [];
    for (const stack of generated) {
      for (const result of ['succeeded', 'failed'] as const) {
        const hasSeries = stack.updates.some((u) => u.kind === 'update' && u.result === result);
        if (hasSeries && plan.filter((p) => p.result === result).length < 3) plan.push({ stack, result });
      }
    }
    expect(plan.length).toBeGreaterThanOrEqual(4);
    const ids: string[] = [];
    for (const p of plan) {
      sim.control.advanceClock(120);
      ids.push(sim.control.addCompletedUpdate(p.stack, { kind: 'update', result: p.result }));
    }
    // A stack with an exported update, so the trace links of its row can be checked.
    const running = generated.find((s) => !plan.some((p) => p.stack === s) && s.updates.some(completed))!;
    sim.control.startUpdate(running, { kind: 'update' });
    sim.control.tick();
    const refused = traceIdFor(plan[0]!.stack, ids[0]!);
    receiver.failTrace(refused, 400);
    sim.faults.add({ kind: '503', endpoint: 'listUpdates', count: 1 });
    await app.runOnce();
    expect(receiver.requests.some((r) => r.status === 400 && r.spans.some((sp) => sp.traceId === refused))).toBe(true);
    receiver.forgetTrace(refused);
    expect((await app.runOnce()).result).toBe('success');
    after = sim.truth();
    const newIds = new Set(ids);
    added = allUpdates(after).filter(({ update }) => newIds.has(update.updateId));
    expect(added).toHaveLength(plan.length);

    await eventually(seen(total(after)), 60_000, `Prometheus to scrape the new updates (${prometheus.output().slice(-500)})`);
    // Enough scrapes after the change for the 4-scrape rate windows to see it.
    await new Promise((r) => setTimeout(r, 5_000 * SCRAPE_SECONDS));
    to = Math.floor(Date.now() / 1000);
  }, 180_000);

  afterAll(async () => {
    await prometheus?.stop();
    await app?.stop();
    await receiver?.close();
    await sim?.close();
    tmp.cleanup();
  });

  it('finds every template variable value through its own label_values query', async () => {
    const problems: string[] = [];
    const chosen = { org: added[0]!.stack.org, project: added[0]!.stack.project, stack: added[0]!.stack.stack, kind: 'update', instance };
    const vars: Record<string, string> = withAll();
    for (const v of dashboard.templating.list.filter((x) => x.type === 'query')) {
      const q = labelValuesQuery(v);
      if (!q) {
        problems.push(`variable ${v.name} is not label_values(selector, label)`);
        continue;
      }
      const selector = interpolate(q.selector, vars, {});
      const values = await api<string[]>(`label/${q.label}/values`, { 'match[]': selector, start: from, end: to });
      const want = chosen[v.name as keyof typeof chosen];
      if (!values.includes(want)) problems.push(`variable ${v.name}: ${selector} gives ${JSON.stringify(values)}, not ${want}`);
      // Later variables see this one's chosen value, as Grafana chains them.
      vars[v.name] = regexEscape(want);
    }
    expect(problems).toEqual([]);
  });

  it('answers every panel query with data when all values are selected', async () => {
    const empty: string[] = [];
    for (const { panel, target: t } of targets) {
      const series = await runTarget(panel, t, withAll());
      const numbers = series.flatMap((s) => s.values.map(([, v]) => Number(v))).filter((v) => !Number.isNaN(v));
      if (numbers.length === 0) empty.push(`${panel.title} ${t.refId}`);
    }
    expect(empty).toEqual([]);
    expect(targets.length).toBeGreaterThan(20);
  }, 120_000);

  it('answers every panel query for one org, project, stack and kind, and finds that stack in the per-stack panels', async () => {
    const { stack } = added[0]!;
    const vars = { org: regexEscape(stack.org), project: regexEscape(stack.project), stack: regexEscape(stack.stack), kind: 'update', instance: regexEscape(instance) };
    const failures: string[] = [];
    for (const { panel, target: t } of targets) {
      try {
        await runTarget(panel, t, vars);
      } catch (err) {
        failures.push(`${panel.title} ${t.refId}: ${String(err)}`);
      }
    }
    expect(failures).toEqual([]);
    for (const title of ['Completed updates', 'Last update duration per stack', 'Slowest stacks by mean update duration (24 h)', 'Last successful update per stack']) {
      const { panel, target: t } = target(title);
      const series = await runTarget(panel, t, vars);
      expect(series.length, title).toBeGreaterThan(0);
      for (const s of series) if (s.metric['stack'] !== undefined) expect(s.metric['stack'], title).toBe(stack.stack);
    }
  }, 120_000);

  it('shows the ground truth in the overview: stacks, resources, running updates and failed last updates', async () => {
    const value = async (title: string): Promise<number> => {
      const { panel, target: t } = target(title);
      const series = await runTarget(panel, t, withAll());
      expect(series, title).toHaveLength(1);
      return Number(series[0]!.values.at(-1)![1]);
    };
    expect(await value('Stacks watched')).toBe(after.stacks.length);
    expect(await value('Resources')).toBe(after.stacks.reduce((n, s) => n + s.resourceCount, 0));
    const running = new Set(allUpdates(after).filter(({ update }) => !completed(update)).map(({ stack, update }) => key(stack.org, stack.project, stack.stack, update.kind)));
    expect(running.size).toBeGreaterThan(0);
    expect(await value('Running updates')).toBe(running.size);
    const failedLast = [...newestByKind(after).values()].filter(({ update }) => update.result !== 'succeeded');
    expect(failedLast.length).toBeGreaterThan(0);
    expect(await value('Failed last updates')).toBe(failedLast.length);
  });

  it('counts the updates that completed in the range, and their failure ratio', async () => {
    const value = async (title: string): Promise<number> => Number((await runTarget(target(title).panel, target(title).target, withAll()))[0]!.values[0]![1]);
    const completedInRange = await value('Completed updates');
    // increase() extrapolates to the ends of the range: a little above the true count, never below.
    expect(completedInRange).toBeGreaterThanOrEqual(added.length - 1e-9);
    // How far above: the samples inside the range may start and end up to one scrape interval
    // inside it, and Prometheus extrapolates at most 1.1 average intervals past each end, so the
    // count is stretched by at most range / (range - 2 * 2.1 intervals) (the range here is under
    // a minute of 1 s scrapes: about 15%; seen 6.91 for 6).
    const rangeSeconds = to - from;
    const stretch = rangeSeconds / Math.max(1, rangeSeconds - 2 * 2.1 * SCRAPE_SECONDS);
    expect(completedInRange).toBeLessThanOrEqual(added.length * stretch + 1e-9);
    const failed = added.filter(({ update }) => update.result === 'failed').length;
    const ratio = await value('Failure ratio');
    expect(Math.abs(ratio - failed / added.length), `${ratio} for ${failed}/${added.length}`).toBeLessThanOrEqual(RATIO_TOLERANCE * (failed / added.length));
  });

  it('shows each stack’s last update duration and the mean duration of the updates in the window', async () => {
    const last = await runTarget(target('Last update duration per stack').panel, target('Last update duration per stack').target, withAll());
    const kinds = new Set(allUpdates(after).map(({ update }) => update.kind));
    const shown = new Map(last.filter((s) => kinds.has(s.metric['kind']!)).map((s) => [key(s.metric['org']!, s.metric['project']!, s.metric['stack']!, s.metric['kind']!), Number(s.values[0]![1])]));
    const truth = new Map([...newestByKind(after)].map(([k, { update }]) => [k, update.endTime! - update.startTime]));
    expect(shown).toEqual(truth);

    const mean = await runTarget(target('Slowest stacks by mean update duration (24 h)').panel, target('Slowest stacks by mean update duration (24 h)').target, withAll());
    const meanShown = new Map(mean.map((s) => [key(s.metric['org']!, s.metric['project']!, s.metric['stack']!), Number(s.values.at(-1)![1])]));
    const byStack = new Map<string, number[]>();
    for (const { stack, update } of added) {
      const k = key(stack.org, stack.project, stack.stack);
      byStack.set(k, [...(byStack.get(k) ?? []), update.endTime! - update.startTime]);
    }
    // Only stacks with updates in the window, each at the mean of those updates (no NaN rows for idle stacks).
    expect([...meanShown.keys()].sort()).toEqual([...byStack.keys()].sort());
    for (const [k, durations] of byStack) {
      const truth = durations.reduce((a, b) => a + b, 0) / durations.length;
      expect(Math.abs(meanShown.get(k)! - truth), `${k}: ${meanShown.get(k)} for ${truth}`).toBeLessThanOrEqual(RATIO_TOLERANCE * truth);
    }
  });

  it('finds exemplars for the exemplar-enabled panels whose trace ids and durations are those of real updates', async () => {
    const byTraceId = new Map(allUpdates(after).map(({ stack, update }) => [traceIdFor(stack, update.updateId), update]));
    const exemplarTargets = targets.filter(({ target: t }) => t.exemplar === true);
    expect(exemplarTargets.length).toBeGreaterThan(0);
    // Grafana asks for the exemplars of the dashboard's time range (7 days by default); an
    // exemplar's time is its update's end time.
    const start = to - 7 * 86_400;
    expect(added.every(({ update }) => update.endTime! >= start && update.endTime! <= to)).toBe(true);
    for (const { panel, target: t } of exemplarTargets) {
      const query = interpolate(t.expr, withAll(), { __interval: '1s', __rate_interval: '4s', __range: `${to - from}s` });
      const series = await api<{ seriesLabels: Labels; exemplars: Exemplar[] }[]>('query_exemplars', { query, start, end: to });
      const exemplars = series.flatMap((s) => s.exemplars);
      expect(exemplars.length, panel.title).toBeGreaterThan(0);
      for (const e of exemplars) {
        const update = byTraceId.get(e.labels['trace_id'] ?? '');
        expect(update, `exemplar ${JSON.stringify(e.labels)} of ${panel.title}`).toBeDefined();
        expect(Number(e.value)).toBe(update!.endTime! - update!.startTime);
      }
      // The updates that completed while Prometheus watched are the newest of their buckets: some show.
      const ids = new Set(exemplars.map((e) => e.labels['trace_id']));
      expect(added.some(({ stack, update }) => ids.has(traceIdFor(stack, update.updateId))), panel.title).toBe(true);
    }
  });

  /** The root span the collector accepted for an update of the stack. */
  function rootSpanOf(stack: TruthStack): DecodedSpan {
    const ids = new Set(stack.updates.map((u) => traceIdFor(stack, u.updateId)));
    const root = receiver.spans().find((sp) => sp.parentSpanId === '' && ids.has(sp.traceId));
    if (!root) throw new Error(`no root span received for ${stack.project}/${stack.stack}`);
    return root;
  }

  /** A span attribute, or else a resource attribute, as a string (Jaeger and Tempo search both). */
  function attribute(span: DecodedSpan, name: string): string | undefined {
    const v = span.attributes[name] ?? span.resource[name];
    return v === undefined ? undefined : String(v);
  }

  it('links each stack in the per-stack panels to traces whose attributes are that stack’s, in Jaeger and in Tempo', async () => {
    const defaults = Object.fromEntries(
      dashboard.templating.list.filter((v) => v.type === 'textbox').map((v) => [v.name, typeof v.query === 'string' ? v.query : '']),
    );
    const linked = allPanels(dashboard.panels).filter((p) => (p.fieldConfig?.defaults?.links ?? []).length > 0);
    expect(linked.map((p) => p.title).sort()).toEqual(
      ['Failed last updates', 'Last successful update per stack', 'Last update duration per stack', 'Running updates', 'Slowest stacks by mean update duration (24 h)'].sort(),
    );
    const checked: string[] = [];
    for (const panel of linked) {
      const series = await runTarget(panel, panel.targets![0]!, withAll());
      expect(series.length, panel.title).toBeGreaterThan(0);
      for (const { metric } of series) {
        const stack = after.stacks.find((x) => x.org === metric['org'] && x.project === metric['project'] && x.stack === metric['stack'])!;
        const root = rootSpanOf(stack);
        for (const link of panel.fieldConfig!.defaults!.links!) {
          const url = link.url.replace(/\$\{([\w.]+)\}/g, (whole, name: string) => {
            const label = /^__(?:data\.fields|field\.labels)\.(\w+)$/.exec(name)?.[1];
            if (label) return metric[label] ?? whole;
            if (name === '__from') return String(from * 1000);
            if (name === '__to') return String(to * 1000);
            if (name === 'tempo') return 'tempo';
            return defaults[name] ?? whole;
          });
          expect(url, `${panel.title}: ${link.title}`).not.toContain('${');
          const parsed = new URL(url, 'http://grafana.example');
          if (link.url.startsWith('${jaeger_url}/search')) {
            expect(parsed.origin + parsed.pathname).toBe(`${defaults['jaeger_url']}/search`);
            expect(parsed.searchParams.get('service')).toBe(root.resource['service.name']);
            const tags = JSON.parse(parsed.searchParams.get('tags')!) as Record<string, string>;
            expect(Object.keys(tags).length).toBeGreaterThan(0);
            for (const [k, v] of Object.entries(tags)) expect(attribute(root, k), `${panel.title}: Jaeger tag ${k}`).toBe(v);
            // The search window (µs) is the dashboard's time range.
            expect(Number(parsed.searchParams.get('start'))).toBe(from * 1_000_000);
            expect(Number(parsed.searchParams.get('end'))).toBe(to * 1_000_000);
          } else {
            expect(parsed.pathname).toBe('/explore');
            const panes = JSON.parse(parsed.searchParams.get('panes')!) as Record<string, { datasource: string; queries: { queryType: string; query: string }[] }>;
            const pane = Object.values(panes)[0]!;
            expect(pane.datasource).toBe('tempo');
            expect(pane.queries[0]!.queryType).toBe('traceql');
            const conditions = [...pane.queries[0]!.query.matchAll(/(resource|span)\.([\w.]+)\s*=\s*"([^"]*)"/g)];
            expect(conditions.length, pane.queries[0]!.query).toBe(3);
            for (const [, scope, name, value] of conditions) {
              const actual = scope === 'resource' ? root.resource[name!] : root.attributes[name!];
              expect(String(actual), `${panel.title}: TraceQL ${scope}.${name}`).toBe(value);
            }
          }
          checked.push(`${panel.title}: ${link.title}`);
        }
      }
    }
    expect(checked.length).toBeGreaterThan(10);
  });

  it('runs the provisioned trace-to-metrics queries of Jaeger and Tempo for a received trace, and they show that stack', async () => {
    type Store = { name: string; jsonData?: { tracesToMetrics?: { tags: { key: string; value?: string }[]; queries: { name: string; query: string }[] } } };
    const stores = (parse(readFileSync(`${ROOT}deploy/grafana/provisioning/datasources.yml`, 'utf8')) as { datasources: Store[] }).datasources.filter((d) => d.jsonData?.tracesToMetrics);
    expect(stores.map((d) => d.name)).toEqual(['Jaeger', 'Tempo']);
    const { stack } = added[0]!;
    const root = rootSpanOf(stack);
    for (const store of stores) {
      const t = store.jsonData!.tracesToMetrics!;
      // What Grafana writes for $__tags: each mapped attribute the span (or its resource) has.
      const tags = t.tags.map(({ key: k, value }) => `${value ?? k}="${attribute(root, k) ?? ''}"`).join(', ');
      for (const q of t.queries) {
        const result = await api<{ result: VectorSample[] }>('query', { query: q.query.replaceAll('$$__tags', tags), time: to });
        expect(result.result.length, `${store.name}: ${q.name}`).toBeGreaterThan(0);
        for (const sample of result.result) expect(Number.isNaN(Number(sample.value[1])), `${store.name}: ${q.name}`).toBe(false);
      }
      const last = t.queries.find((q) => q.query.startsWith('pulumi_stack_last_update_duration_seconds'))!;
      const shown = (await api<{ result: VectorSample[] }>('query', { query: last.query.replaceAll('$$__tags', tags), time: to })).result;
      const truth = [...newestByKind(after)].filter(([k]) => k.startsWith(`${key(stack.org, stack.project, stack.stack)}/`));
      expect(new Map(shown.map((x) => [x.metric['kind'], Number(x.value[1])]))).toEqual(new Map(truth.map(([, { update }]) => [update.kind, update.endTime! - update.startTime])));
    }
  });
});
