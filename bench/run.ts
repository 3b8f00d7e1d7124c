import { performance } from 'node:perf_hooks';
import { backfillSuite } from './backfill.js';
import { conversionSuite } from './conversion.js';
import { idleCycleSuite } from './idle-cycle.js';
import { freshnessSuite } from './freshness.js';
import { memorySuite } from './memory.js';
import { previewsCycleSuite } from './previews-cycle.js';
import { metricsPushSuite } from './metrics-push.js';
import { postgresCommitSuite } from './postgres-commit.js';
import { scrapeSuite } from './scrape.js';



/*
 * Benchmark runner (`npm run bench [-- <suite>...] [--iterations=N] [--warmup=N]`).
 * A suite only declares workloads; this runner warms each case up, times several
 * iterations, reports the median and prints one table per group (items/s, this process's
 * CPU time and both ratios against the group's baseline case). A group measuring `peak-rss` reports the
 * bytes each call returns (the peak RSS of a process it ran) instead of its time; a `latency`
 * group reports the p50/p99 of the delays (ms) each call returns instead. Register
 * a new suite by adding it to SUITES.
 */

export interface BenchCase {
  readonly name: string;
  /** Work items one call processes (events, spans, ...), for the throughput column. */
  readonly items: number;
  readonly unit: string;
  /**
   * One unit of work; may be async (awaited inside the timing). In a `peak-rss` group it
   * resolves to the peak resident set size, in bytes, of the process it ran; in a `latency`
   * group, to the delays (ms) it observed.
   */
  readonly fn: () => unknown;
  /** Name of another case in the same group to report the time ratio against. */
  readonly baseline?: string;
}

export interface BenchGroup {
  readonly title: string;
  readonly notes?: readonly string[];
  readonly cases: readonly BenchCase[];
  /** What is reported per case: wall time (default), the peak RSS or the delays each call returns. */
  readonly measure?: 'time' | 'peak-rss' | 'latency';
  /** Overrides --iterations / --warmup for slow cases (whole backfills in child processes). */
  readonly iterations?: number;
  readonly warmup?: number;
  /** Runs after the group's cases (stops servers the group started). */
  readonly done?: () => Promise<void>;
}

export interface BenchSuite {
  readonly name: string;
  readonly description: string;
  groups(): BenchGroup[] | Promise<BenchGroup[]>;
  /** Releases what groups() started (servers, stores) once its cases were measured. */
  close?(): Promise<void>;
}

const SUITES: readonly BenchSuite[] = [conversionSuite, backfillSuite, idleCycleSuite, previewsCycleSuite, memorySuite, scrapeSuite, metricsPushSuite, postgresCommitSuite, freshnessSuite];

interface Measured {
  /** Milliseconds, or bytes in a peak-rss group. */
  readonly median: number;
  readonly p90: number;
  readonly min: number;
  readonly max: number;
  /** Median CPU time (user + system) of this process per call, in ms. */
  readonly cpuMs: number;
}

// A trace of each result is kept so no call can be optimised away; the result itself is
// dropped so one iteration's garbage does not inflate the next one's heap.
let sink = 0;
const gc = (globalThis as { gc?: () => void }).gc;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** The nearest-rank percentile (p in 0..100). */
function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.min(sorted.length - 1, Math.ceil((sorted.length * p) / 100) - 1))]!;
}

function p90(values: number[]): number {
  return percentile(values, 90);
}

/** Runs each case of a latency group once, in order, and reports the delays it returned. */
async function latencyGroup(group: BenchGroup): Promise<string[][]> {
  const samples = new Map<string, number[]>();
  for (const c of group.cases) {
    const result = await c.fn();
    if (!Array.isArray(result) || result.length === 0 || !result.every((v) => typeof v === 'number' && Number.isFinite(v))) {
      throw new Error(`latency case "${c.name}" returned no delays`);
    }
    samples.set(c.name, result as number[]);
  }
  return group.cases.map((c) => {
    const v = samples.get(c.name)!;
    const base = c.baseline ? samples.get(c.baseline) : undefined;
    return [
      c.name,
      `${fmt(v.length, 0)} ${c.unit}`,
      fmt(percentile(v, 50), 0),
      fmt(percentile(v, 99), 0),
      `${fmt(Math.min(...v), 0)}..${fmt(Math.max(...v), 0)}`,
      base ? `${fmt(percentile(v, 99) / percentile(base, 99), 3)}x` : '',
    ];
  });
}

/**
 * Runs the cases of a group round-robin (every case once per round), so that a change in
 * the machine's load during the group affects each case alike and the ratios stay fair.
 */
async function measureGroup(cases: readonly BenchCase[], warmup: number, iterations: number, what: 'time' | 'peak-rss'): Promise<Measured[]> {
  for (let i = 0; i < warmup; i++) for (const c of cases) sink += (await c.fn()) === undefined ? 0 : 1;
  const values = cases.map((): number[] => []);
  const cpu = cases.map((): number[] => []);
  for (let i = 0; i < iterations; i++) {
    for (const [k, c] of cases.entries()) {
      gc?.();
      const cpuBefore = process.cpuUsage();
      const t = performance.now();
      const result = await c.fn();
      const ms = performance.now() - t;
      const used = process.cpuUsage(cpuBefore);
      cpu[k]!.push((used.user + used.system) / 1000);
      if (what === 'time') values[k]!.push(ms);
      else if (typeof result === 'number' && result > 0) values[k]!.push(result);
      else throw new Error(`peak-rss case "${c.name}" returned ${String(result)} instead of a byte count`);
      sink += result === undefined ? 0 : 1;
    }
  }
  return values.map((v, k) => ({ median: median(v), p90: p90(v), min: Math.min(...v), max: Math.max(...v), cpuMs: median(cpu[k]!) }));
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
    `node ${process.version}, ${warmup} warm-up + ${iterations} timed iterations per case (cases of a group take turns), median and p90 reported;` +
      ' CPU ms is this process only (servers started by a suite run in a child process);' +
      (gc ? ' full GC before each iteration' : ' NODE_OPTIONS=--expose-gc adds a GC before each iteration') +
      '\n',
  );
  for (const suite of suites) {
    console.log(`## ${suite.name}: ${suite.description}\n`);
    for (const group of await suite.groups()) {
      console.log(`### ${group.title}`);
      for (const note of group.notes ?? []) console.log(`  ${note}`);
      const what = group.measure ?? 'time';
      if (what === 'latency') {
        try {
          const rows = await latencyGroup(group);
          console.log(`\n${table(['case', 'updates', 'p50 ms', 'p99 ms', 'min..max ms', 'p99 vs baseline'], rows)}\n`);
        } finally {
          await group.done?.();
        }
        continue;
      }
      const n = group.iterations ?? iterations;
      const w = group.warmup ?? warmup;
      if (group.iterations !== undefined || group.warmup !== undefined) console.log(`  (${w} warm-up + ${n} timed iterations per case in this group)`);
      const rows: string[][] = [];
      try {
        const measured = await measureGroup(group.cases, w, n, what);
        const byName = new Map(group.cases.map((c, k) => [c.name, measured[k]!]));
        for (const [k, c] of group.cases.entries()) {
          const m = measured[k]!;
          const base = c.baseline ? byName.get(c.baseline) : undefined;
          const scale = what === 'time' ? 1 : 1024 * 1024;
          rows.push([
            c.name,
            `${fmt(c.items, 0)} ${c.unit}`,
            fmt(m.median / scale),
            fmt(m.p90 / scale),
            `${fmt(m.min / scale)}..${fmt(m.max / scale)}`,
            ...(what === 'time' ? [fmt((c.items / m.median) * 1000, 0), fmt(m.cpuMs)] : []),
            base ? `${fmt(m.median / base.median, 2)}x` : '',
            ...(what === 'time' ? [base ? `${fmt(m.cpuMs / base.cpuMs, 2)}x` : ''] : []),
          ]);
        }
      } finally {
        await group.done?.();
      }
      const header =
        what === 'time'
          ? ['case', 'work', 'median ms', 'p90 ms', 'min..max ms', 'items/s', 'CPU ms', 'vs baseline', 'CPU vs baseline']
          : ['case', 'work', 'median peak RSS MiB', 'p90 MiB', 'min..max MiB', 'vs baseline'];
      console.log(`\n${table(header, rows)}\n`);
    }
    await suite.close?.();
  }
  if (sink < 0) console.log('');
}

await main(process.argv.slice(2));
