import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp, type App } from '../../../src/app.js';
import { createHttpApp } from '../../../src/http/http-app.js';
import { startHttpServer } from '../../../src/http/http-server.js';
import { buildStatusReport } from '../../../src/http/status-report.js';
import { ExporterMetrics } from '../../../src/metrics/exporter-metrics.js';
import { traceIdFor } from '../../../src/conversion/trace-ids.js';
import { silentLogger } from '../../../src/logging/logger.js';
import type { RunningSimulator } from '../../../src/simulator/simulator.js';
import { SqliteStateStore } from '../../../src/state/sqlite-store.js';
import { configFor, startTestSimulator, tempDir } from '../../helpers/e2e.js';
import { requireTool } from '../../helpers/processes.js';

// The status page in a real headless browser (Debian's chromium, installed by .ci/run).
const CHROMIUM = '/usr/bin/chromium';
const haveChromium = requireTool('chromium');

const launch = (): Promise<Browser> =>
  chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });

/** A stand-in tracing UI: answers 200 for /trace/{32 hex} and remembers what was asked. */
async function startTraceUi(): Promise<{ url: string; asked: string[]; close(): Promise<void> }> {
  const asked: string[] = [];
  const server: Server = createServer((req, res) => {
    const m = /^\/trace\/([0-9a-f]{32})$/.exec(req.url ?? '');
    if (m) asked.push(m[1]!);
    res.writeHead(m ? 200 : 404, { 'content-type': 'text/plain' }).end(m ? `trace ${m[1]}` : 'no');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, asked, close: () => new Promise((r) => server.close(() => r())) };
}

describe.runIf(haveChromium)('the status page in headless Chromium', () => {
  let browser: Browser;
  let sim: RunningSimulator;
  let app: App;
  let traceUi: Awaited<ReturnType<typeof startTraceUi>>;
  const tmp = tempDir();

  beforeAll(async () => {
    browser = await launch();
    sim = await startTestSimulator();
    traceUi = await startTraceUi();
    app = createApp(configFor(sim, `${tmp.dir}/state.db`, { traces: { exporter: 'none', linkTemplate: `${traceUi.url}/trace/{traceId}` } }), silentLogger(), {});
    await app.start();
    await app.runOnce();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await app?.stop();
    await sim?.close();
    await traceUi?.close();
    tmp.cleanup();
  });

  it('renders the orgs, the recent updates with trace and console links, and its own links answer', async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('response', (r) => {
      if (r.status() >= 400 && r.url().startsWith(app.httpUrl()!)) errors.push(`${r.status()} ${r.url()}`);
    });
    const res = await page.goto(`${app.httpUrl()}/`);
    expect(res?.status()).toBe(200);
    expect(await page.title()).toBe('Pulumi update exporter');

    const orgRows = await page.$$eval('section:has(h2:text-is("Organizations")) tbody tr', (rows) => rows.map((r) => r.textContent ?? ''));
    expect(orgRows.length).toBe(new Set(sim.truth().stacks.map((s) => s.org)).size);

    const recent = await page.$$eval('section:has(h2:text-is("Recent updates")) tbody tr', (rows) =>
      rows.map((r) => ({ stack: r.cells[0]?.textContent ?? '', links: [...r.querySelectorAll('a')].map((a) => a.href) })),
    );
    expect(recent.length).toBeGreaterThan(0);
    expect(recent.length).toBeLessThanOrEqual(50);

    // Each trace link opens the update's deterministic trace id in the tracing UI.
    for (const row of recent.slice(0, 10)) {
      const [traceLink, consoleLink] = row.links;
      const [org, project, stack] = row.stack.split('/') as [string, string, string];
      const traceId = /\/trace\/([0-9a-f]{32})$/.exec(traceLink ?? '')?.[1];
      expect(traceId).toBeDefined();
      const truthStack = sim.truth().stacks.find((s) => s.org === org && s.project === project && s.stack === stack);
      const ids = [...(truthStack?.updates ?? []), ...(truthStack?.previews ?? [])].map((u) => traceIdFor({ org, project, stack }, u.updateId));
      expect(ids).toContain(traceId);
      const trace = await page.goto(traceLink!);
      expect(trace?.status()).toBe(200);
      expect(consoleLink).toMatch(new RegExp(`^${sim.url}/${org}/${project}/${stack}/(updates/\\d+|previews/.+)$`));
    }
    expect(traceUi.asked.length).toBe(Math.min(10, recent.length));

    // The page's own navigation answers.
    await page.goto(`${app.httpUrl()}/`);
    const nav = await page.$$eval('nav a', (as) => as.map((a) => a.href));
    expect(nav.map((h) => new URL(h).pathname)).toEqual(['/metrics', '/status.json', '/readyz', '/healthz']);
    for (const href of nav) expect((await page.request.get(href)).status(), href).toBe(200);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('shows a stack name containing markup as text, running nothing', async () => {
    const store = new SqliteStateStore({ path: ':memory:' });
    const evil = { org: 'acme', project: '<img src=x onerror="window.pwned=1">', stack: '<script>window.pwned=2</script>' };
    await store.migrate();
    await store.replaceOrgStacks('acme', [evil], Date.now());
    await store.commitUpdate({
      update: { stack: evil, updateId: 'u-1', kind: 'update', version: 1, result: 'failed', startTime: 1_700_000_000, endTime: 1_700_000_042 },
      deltas: { counters: [], histograms: [] },
      exportedAtMs: Date.now(),
    });
    // The HTTP surface alone (no poll cycle that would relist the org from the simulator).
    const server = await startHttpServer(
      createHttpApp({
        metrics: new ExporterMetrics({ store, version: 't', revision: 't' }),
        readiness: () => Promise.resolve({ ready: true }),
        status: () => buildStatusReport({ store, version: 't', ready: true, nowMs: Date.now(), orgs: ['acme'], consoleUrl: 'https://app.pulumi.com', recentLimit: 50 }),
        logger: silentLogger(),
      }),
      { host: '127.0.0.1', port: 0 },
    );
    try {
      const page = await browser.newPage();
      const dialogs: string[] = [];
      page.on('dialog', (d) => {
        dialogs.push(d.message());
        void d.dismiss();
      });
      await page.goto(`${server.url}/`);
      const failing = await page.$$eval('section:has(h2:text-is("Stacks whose last update failed or was cancelled")) tbody td:first-child', (tds) => tds.map((td) => td.textContent));
      expect(failing).toEqual([`acme/${evil.project}/${evil.stack}`]);
      expect(await page.$$('img')).toHaveLength(0);
      expect(await page.$$('body script')).toHaveLength(0);
      expect(await page.evaluate('typeof window.pwned')).toBe('undefined');
      expect(dialogs).toEqual([]);
      const recent = await page.$$eval('section:has(h2:text-is("Recent updates")) tbody td:first-child', (tds) => tds.map((td) => td.textContent));
      expect(recent).toEqual([`acme/${evil.project}/${evil.stack}`]);
      await page.close();
    } finally {
      await server.close();
      await store.close();
    }
  });
});
