import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/*
 * src/conversion/ is the pure core (docs/architecture.md): no I/O, clock or environment. It
 * and everything it imports stay free of Node built-ins, express, prom-client and
 * OpenTelemetry; the only packages it may use are the pure ones listed here. Follows
 * relative imports transitively and checks every specifier.
 */

/** Pure packages (no I/O, clock or environment) the core may import. */
const PURE_PACKAGES = new Set(['@noble/hashes/sha2', '@noble/hashes/utils']);

const SRC = fileURLToPath(new URL('../../../src/', import.meta.url));
const IMPORT = /(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

function specifiers(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(IMPORT)].map((m) => m[1] ?? m[2] ?? '');
}

describe('the conversion core', () => {
  it('imports only relative TypeScript modules and listed pure packages, transitively, and never reads process or globals of Node', () => {
    const pending = readdirSync(join(SRC, 'conversion'))
      .filter((f) => f.endsWith('.ts'))
      .map((f) => join(SRC, 'conversion', f));
    const seen = new Set<string>();
    const external: string[] = [];
    while (pending.length > 0) {
      const file = pending.pop()!;
      if (seen.has(file)) continue;
      seen.add(file);
      const text = readFileSync(file, 'utf8');
      expect(text, file).not.toMatch(/\bprocess\.|\bBuffer\b|\brequire\(|\bDate\.now\(|\bnew Date\(|\bMath\.random\(|\bfetch\(/);
      for (const spec of specifiers(file)) {
        if (spec.startsWith('.')) pending.push(resolve(dirname(file), spec.replace(/\.js$/, '.ts')));
        else if (!PURE_PACKAGES.has(spec)) external.push(`${file}: ${spec}`);
      }
    }
    expect(external).toEqual([]);
    expect([...seen].every((f) => f.startsWith(SRC))).toBe(true);
    expect(seen.size).toBeGreaterThan(5);
  });
});
