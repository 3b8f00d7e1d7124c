import { createApp } from '../src/app.js';
import { silentLogger } from '../src/logging/logger.js';
import { benchConfig, type BenchTarget } from './backfill-config.js';

/*
 * Child-process entry (run by memory.ts): one first backfill through the exporter, then
 * its result and this process's peak resident set size as one JSON line on stdout.
 */
interface BackfillJob extends BenchTarget {
  readonly statePath: string;
}

const job = JSON.parse(process.argv[2] ?? '{}') as BackfillJob;
const app = createApp(benchConfig(job, job.statePath, 'otlp'), silentLogger(), { http: false });
const result = await app.runOnce();
await app.stop();
// resourceUsage().maxRSS is in kilobytes.
console.log(JSON.stringify({ result: result.result, exported: result.updatesExported, peakRssBytes: process.resourceUsage().maxRSS * 1024 }));
