import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { createApp } from '../src/app.js';
import { defaultConfig } from '../src/config/schema.js';
import { silentLogger } from '../src/logging/logger.js';
import { startSimulator } from '../src/simulator/simulator.js';

// Renders the status page of an exporter that has read the simulator's history and saves a
// screenshot for the docs: `npm run docs:screenshot` (needs Debian's chromium).

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const OUT = 'docs/images/status-page.png';

const sim = await startSimulator({ seed: 1, host: '127.0.0.1', port: 0, acceptedToken: 'screenshot' });
const orgs = [...new Set(sim.truth().stacks.map((s) => s.org))].map((name) => ({ name }));
const app = createApp(
  defaultConfig({
    pulumi: { backendUrl: sim.url, accessToken: 'screenshot', orgs, requestsPerSecond: 1_000 },
    server: { host: '127.0.0.1', port: 0 },
    state: { path: ':memory:' },
    poll: { backfillDays: 0, initialJitterSeconds: 3_600, intervalSeconds: 3_600 },
    traces: { exporter: 'none', linkTemplate: 'http://localhost:16686/trace/{traceId}' },
  }),
  silentLogger(),
);
await app.start();
await app.runOnce();
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await page.goto(`${app.httpUrl()}/`);
  mkdirSync(`${ROOT}docs/images`, { recursive: true });
  await page.screenshot({ path: `${ROOT}${OUT}`, fullPage: false });
  console.log(`wrote ${OUT}`);
} finally {
  await browser.close();
  await app.stop();
  await sim.close();
}
