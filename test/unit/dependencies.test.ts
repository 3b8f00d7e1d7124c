import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/* Every declared dependency is used: runtime ones by src/, development ones by tests, benches, configs or scripts. */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
  scripts: Record<string, string>;
};

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => /\.(ts|js|mjs)$/.test(f))
    .map((f) => join(ROOT, dir, f));
}

/** Package names imported by the given files (bare specifiers, `name` or `@scope/name`). */
function importedPackages(files: readonly string[]): Set<string> {
  const names = new Set<string>();
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/(?:from\s+|import\(\s*|import\s+)'([^.'/][^']*)'/g)) {
      const spec = m[1] ?? '';
      const parts = spec.split('/');
      names.add(spec.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] ?? ''));
    }
  }
  return names;
}

describe('package.json dependencies', () => {
  it('lists only runtime dependencies that src/ imports', () => {
    const used = importedPackages(sources('src'));
    const unused = Object.keys(pkg.dependencies).filter((name) => !used.has(name));
    expect(unused).toEqual([]);
  });

  it('lists only development dependencies that tests, benches, configs or scripts use', () => {
    const files = [...sources('test'), ...sources('bench'), join(ROOT, 'eslint.config.js'), join(ROOT, 'vitest.config.ts')];
    const used = importedPackages(files);
    const scripts = Object.values(pkg.scripts).join(' ');
    const runtime = new Set(Object.keys(pkg.dependencies));
    // Required peers of a used tool, declared so their version is pinned.
    const peers = new Set(['vite']);
    const unused = Object.keys(pkg.devDependencies).filter((name) => {
      if (used.has(name) || peers.has(name)) return false;
      // Type packages serve the package they are named after.
      const typed = name.startsWith('@types/') ? name.slice('@types/'.length) : undefined;
      if (typed !== undefined && (typed === 'node' || runtime.has(typed) || used.has(typed))) return false;
      // Tools run by a script.
      const bin = { typescript: 'tsc', vitest: 'vitest', eslint: 'eslint', tsx: 'tsx' }[name];
      return !(bin !== undefined && new RegExp(`\\b${bin}\\b`).test(scripts));
    });
    expect(unused).toEqual([]);
  });
});
