import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { traceIdFor } from '../../src/conversion/trace-ids.js';
import { main } from '../../src/main.js';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

/** Files reachable from `entry` through static `import ... from` statements (dynamic import() excluded). */
function staticImports(entry: string): Set<string> {
  const seen = new Set<string>();
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.pop() ?? '';
    if (seen.has(file)) continue;
    seen.add(file);
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/^(?:import|export)\s[^;]*?from\s+'(\.[^']+)'/gms)) {
      queue.push(resolve(dirname(file), (m[1] ?? '').replace(/\.js$/, '.ts')));
    }
  }
  return seen;
}

describe('the command line', () => {
  let dir: string;
  let badConfig: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'pue-main-'));
    badConfig = join(dir, 'bad.yaml');
    writeFileSync(badConfig, 'server:\n  prot: 1\n');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each([
    ['run', '-c'],
    ['run', '--config'],
    ['once', '-c'],
    ['validate', '-c'],
    ['validate', '--config'],
    ['demo', '-c'],
  ])('%s %s FILE reads that file (its problem is reported with the file name, exit 2)', async (command, flag) => {
    // The demo recreates its own state file: keep it in memory here.
    const r = await cli([command, flag, badConfig, ...(command === 'demo' ? ['--state', ':memory:'] : [])]);
    expect(r.code).toBe(2);
    expect(r.out + r.err).toContain(`server.prot: unknown key; did you mean "port"? (in ${badConfig})`);
  });

  it('accepts --config=FILE and the default command with -c', async () => {
    expect((await cli([`--config=${badConfig}`])).err).toContain(badConfig);
    expect((await cli(['validate', `--config=${badConfig}`])).out).toContain(badConfig);
  });

  it.each(['run', 'once', 'validate', 'demo', 'trace-id'])('%s --help prints that command’s own usage and exits 0', async (command) => {
    const r = await cli([command, '--help']);
    expect(r.code).toBe(0);
    expect(r.out.split('\n')[0]).toMatch(new RegExp(`^Usage: pulumi-update-exporter ${command}\\b`));
  });

  it('simulate --help prints the simulator usage', async () => {
    const r = await cli(['simulate', '--help']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^Usage: pulumi-update-exporter simulate/);
  });

  it('--help without a command lists every command; --version prints the version', async () => {
    const help = await cli(['--help']);
    expect(help.code).toBe(0);
    for (const c of ['run', 'once', 'validate', 'simulate', 'demo', 'trace-id']) expect(help.out).toContain(`  ${c} `);
    expect((await cli(['-v'])).out).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('rejects an unknown option or a wrong argument count with exit 2 and the command’s usage', async () => {
    const unknown = await cli(['validate', '--verbose']);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toContain("Unknown option '--verbose'");
    expect(unknown.err).toContain('Usage: pulumi-update-exporter validate');
    const missing = await cli(['validate', '--config']);
    expect(missing.code).toBe(2);
    const extra = await cli(['trace-id', 'acme/web/prod']);
    expect(extra.code).toBe(2);
    expect(extra.err).toContain('Usage: pulumi-update-exporter trace-id');
    expect((await cli(['bogus'])).code).toBe(2);
  });

  it('prints the trace id of an update', async () => {
    const r = await cli(['trace-id', 'acme/web/prod', 'u-1']);
    expect(r.code).toBe(0);
    expect(r.out).toBe(traceIdFor({ org: 'acme', project: 'web', stack: 'prod' }, 'u-1'));
  });

  it('loads the simulator and the demo only from the commands that need them', () => {
    const loaded = [...staticImports(join(SRC, 'main.ts'))].map((f) => f.slice(SRC.length));
    expect(loaded).toContain('app.ts');
    expect(loaded.filter((f) => f.startsWith('simulator/') || f === 'demo.ts')).toEqual([]);
  });
});
