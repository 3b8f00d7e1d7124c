import type { IncomingMessage, ServerResponse } from 'node:http';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { createApp, type App } from '../../../src/app.js';
import { defaultConfig, type ConfigInput } from '../../../src/config/schema.js';
import { createLogger, silentLogger } from '../../../src/logging/logger.js';
import { SqliteStateStore } from '../../../src/state/sqlite-store.js';
import { tempDir } from '../../helpers/e2e.js';
import { sendJson, startLocalServer, type LocalServer } from '../../unit/pulumi/local-server.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const TOKEN = 'pul-hostile0000111122223333444455556666777';
const NOW_S = Math.floor(Date.now() / 1000);

let cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

function historyOf(stack: string): unknown {
  return {
    updates: [
      {
        updateID: `${stack}-u1`,
        version: 1,
        info: { kind: 'update', result: 'succeeded', startTime: NOW_S - 600, endTime: NOW_S - 590, version: 1, resourceChanges: { same: 1 } },
      },
    ],
    itemsPerPage: 100,
    total: 1,
  };
}

/** Two stacks, `good` and `bad`; `events(stack, res, i)` answers the engine-event calls. */
async function upstream(events: (stack: string, res: ServerResponse, i: number) => void): Promise<LocalServer> {
  const s = await startLocalServer((req: IncomingMessage, res, i) => {
    const path = new URL(req.url ?? '', 'http://x').pathname;
    if (path === '/api/user/stacks') {
      return sendJson(res, 200, {
        stacks: ['good', 'bad'].map((stackName) => ({ orgName: 'acme', projectName: 'web', stackName, lastUpdate: NOW_S - 600, resourceCount: 1 })),
      });
    }
    const stack = path.split('/')[5] ?? '';
    if (path.endsWith('/updates')) return sendJson(res, 200, historyOf(stack));
    if (path.endsWith('/events')) return events(stack, res, i);
    sendJson(res, 404, { code: 404, message: 'not found' });
  });
  cleanups.push(() => s.close());
  return s;
}

function logs(): { lines: Array<Record<string, unknown>>; logger: ReturnType<typeof createLogger> } {
  const lines: Array<Record<string, unknown>> = [];
  const logger = createLogger({ level: 'info', destination: { write: (l: string) => lines.push(JSON.parse(l) as Record<string, unknown>) } });
  return { lines, logger };
}

function appFor(url: string, statePath: string, pulumi: ConfigInput['pulumi'], logger: ReturnType<typeof createLogger>, poll: ConfigInput['poll'] = {}): App {
  const config = defaultConfig({
    pulumi: { backendUrl: url, accessToken: TOKEN, orgs: [{ name: 'acme' }], retryBaseDelayMillis: 10, ...pulumi },
    server: { host: '127.0.0.1', port: 0 },
    state: { path: statePath },
    poll: { backfillDays: 0, initialJitterSeconds: 0, intervalSeconds: 3600, ...poll },
    traces: { exporter: 'none' },
    log: { level: 'info' },
  });
  const app = createApp(config, logger);
  cleanups.push(() => app.stop());
  return app;
}

async function errorsTotal(app: App, code: string): Promise<number> {
  const text = await (await fetch(`${app.httpUrl()}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`pulumi_exporter_errors_total{code="${code}"}`));
  return line === undefined ? 0 : Number(line.split(' ').pop());
}

describe('a hostile upstream', () => {
  it('fails only the update whose events never end, exports the other stack, and keeps memory bounded', async () => {
    const tmp = tempDir();
    cleanups.push(tmp.cleanup);
    const s = await upstream((stack, res, i) => {
      if (stack === 'good') return sendJson(res, 200, { events: [], continuationToken: null });
      const events = Array.from({ length: 100 }, (_, k) => ({ timestamp: NOW_S - 595, type: 'diagnosticEvent', diagnosticEvent: { message: `noise ${i}/${k} ${'x'.repeat(200)}`, color: 'never', severity: 'info' } }));
      sendJson(res, 200, { events, continuationToken: `fresh-${i}` });
    });
    const { lines, logger } = logs();
    const app = appFor(s.url, join(tmp.dir, 'state.db'), { maxPagesPerListing: 100 }, logger, { maxUpdateAttempts: 2 });
    await app.start();
    const heapBefore = process.memoryUsage().heapUsed;

    const first = await app.runOnce();
    expect(first.updatesExported).toBe(1);
    expect(first.stacksFailed).toBe(1);
    expect(await app.store.isExported({ org: 'acme', project: 'web', stack: 'good' }, 'good-u1')).toBe(true);
    expect(await app.store.isExported({ org: 'acme', project: 'web', stack: 'bad' }, 'bad-u1')).toBe(false);
    expect(await errorsTotal(app, 'API_TOO_MANY_PAGES')).toBe(1);
    const failure = lines.find((l) => l['code'] === 'API_TOO_MANY_PAGES');
    expect(failure?.['stack']).toBe('acme/web/bad');
    expect(String(failure?.['error'])).toContain('pulumi.maxPagesPerListing');

    // Update-specific: after poll.maxUpdateAttempts cycles it is counted without its resource spans.
    const second = await app.runOnce();
    expect(second.result).toBe('success');
    expect(await app.store.isExported({ org: 'acme', project: 'web', stack: 'bad' }, 'bad-u1')).toBe(true);
    // 2 cycles x 100 pages of ~30 KB were read; what is retained must not grow with them.
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(64 * 1024 * 1024);
  });

  it('stops within seconds while Pulumi Cloud accepts connections and never answers, committing nothing', async () => {
    // Listing and history answer; every engine-event call hangs.
    const run = await stopWhileHanging((held) => upstream((_stack, res) => void held.push(res)), 2);
    expect(run.stopMs).toBeLessThan(3_000);
    expect(run.lines.filter((l) => Number(l['level']) >= 50)).toEqual([]);
    expect(run.lines.some((l) => JSON.stringify(l).includes('state store is closed'))).toBe(false);

    const reopened = new SqliteStateStore({ path: run.statePath, logger: silentLogger() });
    cleanups.push(() => reopened.close());
    await reopened.migrate();
    for (const stack of ['good', 'bad']) expect(await reopened.isExported({ org: 'acme', project: 'web', stack }, `${stack}-u1`)).toBe(false);
  });

  it('stops within seconds while the stack listing itself never answers, logging no failure', async () => {
    let server: LocalServer | undefined;
    const run = await stopWhileHanging(async (held) => {
      server = await startLocalServer((_req, res) => void held.push(res));
      cleanups.push(() => server?.close());
      return server;
    }, 1);
    expect(run.stopMs).toBeLessThan(3_000);
    expect(run.lines.filter((l) => Number(l['level']) >= 40)).toEqual([]);
    expect(server?.requests).toHaveLength(1);
  });
});

describe('the exporter process against a Pulumi Cloud that never answers', () => {
  it('exits 0 within the 10 s target after SIGTERM, with the shipped timeouts', async () => {
    const tmp = tempDir();
    cleanups.push(tmp.cleanup);
    const held: ServerResponse[] = [];
    cleanups.push(() => held.forEach((r) => r.destroy()));
    const s = await startLocalServer((_req, res) => void held.push(res));
    cleanups.push(() => s.close());
    const configPath = join(tmp.dir, 'config.yaml');
    writeFileSync(configPath, 'poll:\n  initialJitterSeconds: 0\n');
    const env: NodeJS.ProcessEnv = { PATH: process.env['PATH'] ?? '' };
    Object.assign(env, {
      PULUMI_BACKEND_URL: s.url,
      PULUMI_ACCESS_TOKEN: TOKEN,
      EXPORTER_ORGS: 'acme',
      EXPORTER_STATE: join(tmp.dir, 'state.db'),
      EXPORTER_HOST: '127.0.0.1',
      EXPORTER_PORT: '0',
      OTEL_TRACES_EXPORTER: 'none',
    });
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'run', '--config', configPath], { cwd: ROOT, env, stdio: 'ignore' });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    cleanups.push(() => void child.kill('SIGKILL'));
    while (held.length < 1) await new Promise((r) => setTimeout(r, 20));
    const started = Date.now();
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(Date.now() - started).toBeLessThan(10_000);
  }, 30_000);
});

/**
 * Starts an exporter (shipped request timeout and attempts: 4 x 30 s if the stop signal did
 * not reach the requests) against `upstreamWith`, waits until `hanging` requests are held
 * unanswered, then times app.stop().
 */
async function stopWhileHanging(
  upstreamWith: (held: ServerResponse[]) => Promise<LocalServer>,
  hanging: number,
): Promise<{ stopMs: number; lines: Array<Record<string, unknown>>; statePath: string }> {
  const tmp = tempDir();
  cleanups.push(tmp.cleanup);
  const held: ServerResponse[] = [];
  cleanups.push(() => held.forEach((r) => r.destroy()));
  const s = await upstreamWith(held);
  const { lines, logger } = logs();
  const statePath = join(tmp.dir, 'state.db');
  const app = appFor(s.url, statePath, { requestTimeoutMillis: 30_000, maxAttempts: 4 }, logger);
  await app.start();
  while (held.length < hanging) await new Promise((r) => setTimeout(r, 10));
  const started = Date.now();
  await app.stop();
  return { stopMs: Date.now() - started, lines, statePath };
}
