import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp, type App } from '../../../src/app.js';
import { silentLogger } from '../../../src/logging/logger.js';
import type { RunningSimulator } from '../../../src/simulator/simulator.js';
import { configFor, startTestSimulator, TEST_TOKEN } from '../../helpers/e2e.js';
import { startOtlpReceiver, type DecodedSpan, type OtlpReceiver } from '../../helpers/otlp-receiver.js';

// Self-telemetry: the exporter's own spans (poll cycle > stack sync > Pulumi Cloud request)
// go through NodeSDK to their own endpoint with their own resource, apart from the update traces.
describe('self-telemetry (selfTelemetry.tracesEndpoint)', () => {
  let sim: RunningSimulator;
  let updates: OtlpReceiver;
  let self: OtlpReceiver;
  let app: App;

  beforeAll(async () => {
    sim = await startTestSimulator();
    updates = await startOtlpReceiver();
    self = await startOtlpReceiver();
    app = createApp(
      {
        ...configFor(sim, ':memory:', { traces: { exporter: 'otlp', endpoint: updates.url, serviceName: 'pulumi' } }),
        selfTelemetry: { tracesEndpoint: self.url },
      },
      silentLogger(),
      { http: false },
    );
    await app.start();
    await app.runOnce();
    await app.stop();
  }, 60_000);

  afterAll(async () => {
    await updates?.close();
    await self?.close();
    await sim?.close();
  });

  const byId = (spans: readonly DecodedSpan[]) => new Map(spans.map((s) => [s.spanId, s]));

  it('sends spans with the exporter\'s own resource, never the update traces\' one', () => {
    const own = self.spans();
    expect(own.length).toBeGreaterThan(0);
    for (const s of own) expect(s.resource['service.name']).toBe('pulumi-update-exporter');
    expect(updates.spans().length).toBeGreaterThan(0);
    for (const s of updates.spans()) expect(s.resource['service.name']).toBe('pulumi');
    const ownTraces = new Set(own.map((s) => s.traceId));
    expect(updates.spans().some((s) => ownTraces.has(s.traceId))).toBe(false);
  });

  it('nests each stack sync under its poll cycle and each Pulumi Cloud request under the work that made it', () => {
    const own = self.spans();
    const spans = byId(own);
    const cycles = own.filter((s) => s.name === 'poll cycle');
    expect(cycles).toHaveLength(1);
    const cycle = cycles[0]!;
    expect(cycle.parentSpanId).toBe('');
    expect(cycle.attributes['pulumi.poll.result']).toBe('success');

    const syncs = own.filter((s) => s.name === 'stack sync');
    expect(syncs.length).toBeGreaterThan(0);
    for (const s of syncs) {
      expect(s.parentSpanId).toBe(cycle.spanId);
      expect(s.attributes['pulumi.org']).toEqual(expect.any(String));
    }

    const requests = own.filter((s) => typeof s.attributes['url.full'] === 'string' && (s.attributes['url.full'] as string).startsWith(sim.url));
    expect(requests.length).toBeGreaterThan(syncs.length);
    for (const r of requests) {
      const parent = spans.get(r.parentSpanId);
      expect(parent?.name, r.attributes['url.full'] as string).toMatch(/^(poll cycle|stack sync)$/);
      // History and events calls belong to the stack being synced.
      const m = /\/api\/stacks\/([^/]+)\/([^/]+)\/([^/]+)\//.exec(r.attributes['url.full'] as string);
      if (m) {
        expect(parent?.name).toBe('stack sync');
        expect([parent?.attributes['pulumi.org'], parent?.attributes['pulumi.project'], parent?.attributes['pulumi.stack']]).toEqual([m[1], m[2], m[3]].map((x) => decodeURIComponent(x!)));
      }
    }
  });

  it('never carries the Pulumi token', () => {
    for (const req of self.requests) expect(req.body.includes(Buffer.from(TEST_TOKEN))).toBe(false);
  });
});
