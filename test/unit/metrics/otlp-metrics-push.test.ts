import { describe, expect, it } from 'vitest';
import { defaultConfig } from '../../../src/config/schema.js';
import { silentLogger } from '../../../src/logging/logger.js';
import { ExporterMetrics } from '../../../src/metrics/exporter-metrics.js';
import { startMetricsPush } from '../../../src/metrics/otlp-metrics-push.js';
import { memoryStore } from '../../helpers/memory-store.js';
import { startOtlpMetricsReceiver } from '../../helpers/otlp-metrics-receiver.js';

describe('startMetricsPush', () => {
  it('pushes no pulumi_* series (never a part of them) when the store cannot be read, and counts the error', async () => {
    const store = await memoryStore();
    await store.commitUpdate({
      update: { stack: { org: 'acme', project: 'web', stack: 'dev' }, updateId: 'u1', kind: 'update', version: 1, result: 'succeeded', startTime: 1, endTime: 2 },
      deltas: { counters: [{ name: 'pulumi_updates_total', labels: { org: 'acme', project: 'web', stack: 'dev', kind: 'update', result: 'succeeded' }, value: 1 }], histograms: [] },
      exportedAtMs: 3_000,
    });
    const receiver = await startOtlpMetricsReceiver();
    const metrics = new ExporterMetrics({ store, version: 't', revision: 't' });
    const push = startMetricsPush({
      config: { ...defaultConfig().metricsPush, exporter: 'otlp', endpoint: receiver.url, intervalMillis: 3_600_000, timeoutMillis: 5_000 },
      store,
      metrics,
      isLeader: () => true,
      selfMetricsSinceMs: Date.now(),
      version: 't',
      logger: silentLogger(),
    });
    try {
      await push.flush();
      expect(receiver.latest().filter((p) => p.name === 'pulumi_updates_total').map((p) => p.value)).toEqual([1]);

      await store.close();
      await push.flush();
      const names = new Set(receiver.latest().map((p) => p.name));
      expect([...names].filter((n) => !n.startsWith('pulumi_exporter_'))).toEqual([]);
      expect(names.has('pulumi_exporter_errors_total')).toBe(true);
      const errors = receiver.latest().find((p) => p.name === 'pulumi_exporter_errors_total' && p.attributes['code'] === 'STATE_ERROR');
      expect(errors?.value).toBe(1);
    } finally {
      await push.shutdown();
      await receiver.close();
    }
  });
});
