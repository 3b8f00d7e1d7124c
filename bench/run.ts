import { performance } from 'node:perf_hooks';
import { conversionSuite } from './conversion.js';
import { pipelineSuite } from './pipeline.js';
import { scrapeSuite } from './scrape.js';

/*
 * Benchmark runner (`npm run bench [-- <suite>...] [--iterations=N] [--warmup=N]`).
 * A suite only declares workloads; this runner warms each case up, times several
 * iterations, reports the median and prints one table per group (items/s and the time
 * ratio against the group's baseline case). Register a new suite
 * by adding it to SUITES.
 */

export interface BenchCase {
  readonly name: string;
  /** Work items one call processes (events, spans, ...), for the throughput column. */
  readonly items: number;
  readonly unit: string;
  /** One unit of work; may be async (awaited inside the timing). */
  readonly fn: () => unknown;
  /** Name of another case in the same group to report the time ratio against. */
  readonly baseline?: string;
}

export interface BenchGroup {
  readonly title: string;
  readonly notes?: readonly string[];
  readonly cases: readonly BenchCase[];
}

export interface BenchSuite {
  readonly name: string;
  readonly description: string;
  groups(): BenchGroup[] | Promise<BenchGroup[]>;
  /** Releases what groups() started (servers, stores) once its cases were measured. */
  close?(): Promise<void>;
}

const SUITES: readonly BenchSuite[] = [conversionSuite, pipelineSuite, scrapeSuite];

interface Measured {
  readonly medianMs: number;
  readonly p90Ms: number;
  readonly minMs: number;
  readonly maxMs: number;
}

// A trace of each result is kept so no call can be optimised away; the result itself is
// dropped so one iteration's garbage does not inflate the next one's heap.
let sink = 0;
const gc = (globalThis as { gc?: () => void }).gc;

async function measure(fn: () => unknown, warmup: number, iterations: number): Promise<Measured> {
  for (let i = 0; i < warmup; i++) sink += (await fn()) === undefined ? 0 : 1;
  const times: number[] = [];
  for (let i = 0; i < iterations; i++) {
    gc?.();
    const t = performance.now();
    const result = await fn();
    times.push(performance.now() - t);
    sink += result === undefined ? 0 : 1;
  }
  times.sort((a, b) => a - b);
  const mid = Math.floor(times.length / 2);
  const median = times.length % 2 === 1 ? times[mid]! : (times[mid - 1]! + times[mid]!) / 2;
  const p90 = times[Math.min(times.length - 1, Math.ceil(times.length * 0.9) - 1)]!;
  return { medianMs: median, p90Ms: p90, minMs: times[0]!, maxMs: times[times.length - 1]! };
}

function fmt(n: number, digits = 1): string {
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]?.length ?? 0)));
  const line = (cells: readonly string[]): string =>
    `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

function option(args: readonly string[], name: string, fallback: number): number {
  const arg = args.find((a) => a.startsWith(`--${name}=`));
  const value = arg ? Number(arg.split('=')[1]) : fallback;
  return Number.isFinite(value) && value > 0 ? Math.floor(value) : fallback;
}

async function main(args: readonly string[]): Promise<void> {
  const iterations = option(args, 'iterations', 10);
  const warmup = option(args, 'warmup', 3);
  const wanted = args.filter((a) => !a.startsWith('--'));
  const suites = wanted.length > 0 ? SUITES.filter((s) => wanted.includes(s.name)) : SUITES;
  if (suites.length === 0) {
    console.error(`unknown suite(s) ${wanted.join(', ')}; available: ${SUITES.map((s) => s.name).join(', ')}`);
    process.exitCode = 2;
    return;
  }
  console.log(
    `node ${process.version}, ${warmup} warm-up + ${iterations} timed iterations per case, median and p90 reported` +
      (gc ? ', full GC before each iteration' : ' (NODE_OPTIONS=--expose-gc for a GC before each iteration)') +
      '\n',
  );
  for (const suite of suites) {
    console.log(`## ${suite.name}: ${suite.description}\n`);
    for (const group of await suite.groups()) {
      console.log(`### ${group.title}`);
      for (const note of group.notes ?? []) console.log(`  ${note}`);
      const results = new Map<string, Measured>();
      const rows: string[][] = [];
      for (const c of group.cases) {
        const m = await measure(c.fn, warmup, iterations);
        results.set(c.name, m);
        const base = c.baseline ? results.get(c.baseline) : undefined;
        rows.push([
          c.name,
          `${fmt(c.items, 0)} ${c.unit}`,
          fmt(m.medianMs),
          fmt(m.p90Ms),
          `${fmt(m.minMs)}..${fmt(m.maxMs)}`,
          fmt((c.items / m.medianMs) * 1000, 0),
          base ? `${fmt(m.medianMs / base.medianMs, 2)}x` : '',
        ]);
      }
      console.log(`\n${table(['case', 'work', 'median ms', 'p90 ms', 'min..max ms', 'items/s', 'vs baseline'], rows)}\n`);
    }
    await suite.close?.();
  }
  if (sink < 0) console.log('');
}

await main(process.argv.slice(2));
