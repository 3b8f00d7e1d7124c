import { openSync, writeSync, closeSync } from 'node:fs';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { createApp, type App } from '../../../src/app.js';
import { createLogger } from '../../../src/logging/logger.js';
import type { RunningSimulator } from '../../../src/simulator/simulator.js';
import { buildApp, configFor, startTestSimulator, tempDir } from '../../helpers/e2e.js';

/** Overwrites the root page of one table with bytes that are no valid b-tree page. */
function corruptTable(path: string, table: string): void {
  const raw = new Database(path);
  const pageSize = raw.pragma('page_size', { simple: true }) as number;
  const root = raw.prepare('SELECT rootpage FROM sqlite_schema WHERE name = ?').pluck().get(table) as number;
  raw.pragma('wal_checkpoint(TRUNCATE)');
  raw.close();
  const fd = openSync(path, 'r+');
  try {
    writeSync(fd, Buffer.alloc(pageSize, 0xff), 0, pageSize, (root - 1) * pageSize);
  } finally {
    closeSync(fd);
  }
}

describe('a state store with a corrupted page', () => {
  let sim: RunningSimulator;
  let app: App | undefined;
  const tmp = tempDir('pue-corrupt-');

  beforeAll(async () => {
    sim = await startTestSimulator({ seed: 4 });
  });
  afterAll(async () => {
    await app?.stop();
    await sim.close();
    tmp.cleanup();
  });

  it('turns /metrics and /readyz to 503 with the error logged, while polls that avoid the page still succeed', async () => {
    const path = `${tmp.dir}/state.db`;
    const config = configFor(sim, path, { poll: { backfillDays: 3650 } });
    const seed = buildApp(config);
    expect((await seed.runOnce()).result).toBe('success');
    await seed.stop();
    corruptTable(path, 'counters');

    const logged: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, done) {
        logged.push(chunk.toString());
        done();
      },
    });
    app = createApp(config, createLogger({ level: 'error', destination }), {});
    await app.start();
    // Nothing changed upstream, so the cycle reads the stack lists only and succeeds.
    expect((await app.runOnce()).result).toBe('success');
    const url = app.httpUrl();
    expect((await fetch(`${url}/readyz`)).status).toBe(200);

    const scrape = await fetch(`${url}/metrics`);
    expect(scrape.status).toBe(503);
    const body = await scrape.text();
    expect(body).toBe('metrics unavailable: STATE_ERROR (see the exporter log)\n');
    expect(body).not.toContain('pulumi_');
    const errorLine = logged.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l['code'] === 'STATE_ERROR');
    expect(errorLine?.['msg']).toContain('metrics scrape failed');
    expect(JSON.stringify(errorLine?.['err'])).toContain('malformed');

    const ready = await fetch(`${url}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.text()).toContain('could not read the state store');
    // The failed read is counted, for when the store is repaired and scrapes work again.
    expect(app.metrics.storeReadFailure()).toMatchObject({ code: 'STATE_ERROR' });
  });
});
