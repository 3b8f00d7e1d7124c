import type { ServerResponse } from 'node:http';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/logging/logger.js';
import { PulumiClient } from '../../../src/pulumi/pulumi-client.js';
import { sendJson, startLocalServer, type LocalServer } from './local-server.js';

const TOKEN = 'pul-aaaabbbbccccddddeeeeffff0000111122223333';
const ref = { org: 'acme', project: 'web', stack: 'prod' };
const EMPTY_HISTORY = { updates: [], itemsPerPage: 10, total: 0 };

let server: LocalServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

interface Arrival {
  readonly at: number;
  /** Requests in flight at the server when this one arrived, itself included. */
  readonly inFlight: number;
}

describe('adaptive limit against a real server under a 429 storm', () => {
  it('lowers concurrency on 429, starts nothing before Retry-After, then recovers to the cap', async () => {
    const cap = 8;
    const stormSize = cap;
    const arrivals: Arrival[] = [];
    const throttledAt: number[] = [];
    const storm: ServerResponse[] = [];
    const held: ServerResponse[] = [];
    let heldTimer: NodeJS.Timeout | undefined;
    let inFlight = 0;
    server = await startLocalServer((_req, res: ServerResponse) => {
      inFlight += 1;
      res.on('close', () => {
        inFlight -= 1;
      });
      const index = arrivals.length;
      arrivals.push({ at: Date.now(), inFlight });
      // The first window of requests is held until all of it has arrived (however slow a loaded
      // machine is to connect), then throttled together; the rest succeed after a short delay.
      if (index < stormSize) {
        storm.push(res);
        if (storm.length === stormSize) {
          for (const held of storm) {
            throttledAt.push(Date.now());
            sendJson(held, 429, { code: 429, message: 'slow down' }, { 'Retry-After': '1' });
          }
        }
        return;
      }
      // Successes are held until the client has `cap` requests in flight, or 250 ms have
      // passed: a full window then shows as `cap` in flight even on a machine too loaded for
      // requests sent together to overlap at a fixed short delay.
      held.push(res);
      const answer = (): void => {
        clearTimeout(heldTimer);
        heldTimer = undefined;
        for (const r of held.splice(0)) sendJson(r, 200, EMPTY_HISTORY);
      };
      if (inFlight >= cap) answer();
      else heldTimer ??= setTimeout(answer, 250);
    });
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(...chunk.toString('utf8').split('\n').filter((line) => line !== ''));
        done();
      },
    });
    const client = new PulumiClient({
      baseUrl: server.url,
      accessToken: TOKEN,
      version: '0',
      logger: createLogger({ level: 'info', destination }),
      maxConcurrentRequests: cap,
      maxAttempts: 3,
      retryBaseDelayMillis: 1,
    });
    const calls = 60;
    await Promise.all(Array.from({ length: calls }, (_, i) => client.listUpdates(ref, i + 1, 10)));

    expect(arrivals).toHaveLength(calls + stormSize);
    // The storm window ran at the full cap.
    expect(Math.max(...arrivals.slice(0, stormSize).map((a) => a.inFlight))).toBe(cap);
    // No request at all arrived before Retry-After (1 s) had passed since the first 429 was sent.
    const firstThrottle = Math.min(...throttledAt);
    const after = arrivals.slice(stormSize);
    expect(Math.min(...after.map((a) => a.at)) - firstThrottle).toBeGreaterThanOrEqual(1_000);
    // The rate fell: the first requests after the pause ran at half the cap at most ...
    expect(Math.max(...after.slice(0, cap).map((a) => a.inFlight))).toBeLessThanOrEqual(cap / 2);
    // ... and recovered additively to the cap by the end.
    expect(Math.max(...after.slice(-cap).map((a) => a.inFlight))).toBe(cap);
    // The storm halved the limit once, so it is logged once, not once per throttled answer.
    const lowered = lines.map((l) => JSON.parse(l) as { msg: string; concurrencyLimit?: number }).filter((l) => l.msg.includes('lowered the request concurrency limit'));
    expect(lowered.map((l) => l.concurrencyLimit)).toEqual([cap / 2]);
  });
});
