import { describe, expect, it } from 'vitest';
import { startDemo } from '../../../src/demo.js';
import { parseExposition, sumOf } from '../../helpers/exposition.js';
import { eventually } from '../../helpers/processes.js';

describe('demo', () => {
  it('wires the simulator\'s signed webhooks to the exporter: live updates are exported between polls', async () => {
    const lines: string[] = [];
    const demo = await startDemo(
      { seed: '3', state: ':memory:', simulatorPort: '0', liveIntervalMs: '40' },
      // An hour between polls: after the first cycle only webhook deliveries can export anything.
      { EXPORTER_PORT: '0', EXPORTER_POLL_INTERVAL_SECONDS: '3600', OTEL_TRACES_EXPORTER: 'none', EXPORTER_LOG_LEVEL: 'silent' },
      (l) => lines.push(l),
    );
    try {
      const text = lines.join('\n');
      const metricsUrl = /Prometheus metrics\s+(\S+)/.exec(text)?.[1];
      expect(text).toMatch(/webhooks\s+the simulator delivers signed webhooks to http:\/\/127\.0\.0\.1:\d+\/webhooks\/pulumi/);
      const scrape = async () => parseExposition(await (await fetch(metricsUrl!)).text());
      await eventually(async () => (sumOf(await scrape(), 'pulumi_exporter_polls_total') === 1 ? true : undefined), 30_000, 'the first poll');
      const afterPoll = sumOf(await scrape(), 'pulumi_exporter_updates_exported_total');
      await eventually(
        async () => (sumOf(await scrape(), 'pulumi_exporter_updates_exported_total') > afterPoll ? true : undefined),
        60_000,
        'an update exported after the first poll',
      );
      const samples = await scrape();
      expect(sumOf(samples, 'pulumi_exporter_polls_total')).toBe(1);
      expect(sumOf(samples, 'pulumi_exporter_webhook_deliveries_total', { outcome: 'accepted' })).toBeGreaterThan(0);
      expect(sumOf(samples, 'pulumi_exporter_webhook_deliveries_total', { outcome: 'unauthorized' })).toBe(0);
      expect(sumOf(samples, 'pulumi_exporter_webhook_syncs_total', { result: 'synced' })).toBeGreaterThan(0);
    } finally {
      await demo.stop();
    }
  });
});
