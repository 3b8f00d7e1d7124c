import { describe, expect, it } from 'vitest';
import { MetricsChangeLog } from '../../../src/state/metrics-change-log.js';

const prod = { org: 'acme', project: 'web', stack: 'prod' };
const dev = { org: 'acme', project: 'web', stack: 'dev' };
const series = (kind: string) => ({ name: 'pulumi_updates_total', labels: { ...prod, kind } });

describe('MetricsChangeLog', () => {
  it('answers what the writes after a stamp touched, each key once', () => {
    const log = new MetricsChangeLog();
    log.record(5, { series: [series('update')], stacks: [prod] });
    log.record(6, { series: [series('update'), series('refresh')], stacks: [dev] });
    expect(log.since(4, 6)).toEqual({ series: [series('update'), series('refresh')], stacks: [prod, dev] });
  });

  it('answers nothing changed for the current stamp, and only later writes after a later stamp', () => {
    const log = new MetricsChangeLog();
    log.record(5, { series: [series('update')], stacks: [prod] });
    log.record(6, { series: [], stacks: [dev] });
    expect(log.since(6, 6)).toEqual({ series: [], stacks: [] });
    expect(log.since(5, 6)).toEqual({ series: [], stacks: [dev] });
  });

  it('cannot answer across a stamp it did not record (another writer) or before its first record', () => {
    const log = new MetricsChangeLog();
    expect(log.since(1, 2)).toBeUndefined();
    log.record(5, { series: [], stacks: [prod] });
    expect(log.since(3, 5)).toBeUndefined();
    // The store is at 7, but this process recorded up to 5 only.
    expect(log.since(4, 7)).toBeUndefined();
    // A recorded stamp after a gap starts over.
    log.record(8, { series: [], stacks: [dev] });
    expect(log.since(4, 8)).toBeUndefined();
    expect(log.since(7, 8)).toEqual({ series: [], stacks: [dev] });
  });

  it('forgets what it answered: a question about an older stamp is then unanswerable', () => {
    const log = new MetricsChangeLog();
    log.record(5, { series: [], stacks: [prod] });
    log.record(6, { series: [], stacks: [dev] });
    expect(log.since(5, 6)).toEqual({ series: [], stacks: [dev] });
    expect(log.since(4, 6)).toBeUndefined();
  });
});
