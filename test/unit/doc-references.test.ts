import { readFileSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../src/errors.js';

/* Docs and comments cite only documents that exist here, or name a shared reference as shared. */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SKIP = new Set(['node_modules', '.git', 'dist', 'data', 'coverage']);

function files(dir: string, keep: (name: string) => boolean): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
    if (SKIP.has(entry.name)) continue;
    const rel = dir === '.' ? entry.name : join(dir, entry.name);
    if (entry.isDirectory()) out.push(...files(rel, keep));
    else if (keep(entry.name)) out.push(rel);
  }
  return out;
}

const MARKDOWN = new Set(files('.', (n) => n.endsWith('.md')).map((f) => basename(f)));
const CITING = [
  ...['src', 'test', 'bench', 'deploy', 'config', 'docs'].flatMap((d) => files(d, (n) => /\.(ts|js|md|ya?ml|json)$/.test(n))),
  'README.md',
].filter((f) => f !== 'CHANGELOG.md');

describe('document references', () => {
  it('cite a document of this repository, or a shared reference by the word "shared"', () => {
    const dangling: string[] = [];
    for (const file of CITING) {
      const text = readFileSync(join(ROOT, file), 'utf8');
      for (const m of text.matchAll(/[\w-]+\.md\b/g)) {
        const name = m[0];
        const before = text.slice(Math.max(0, m.index - 40), m.index);
        if (!MARKDOWN.has(name) && !/shared/i.test(before)) dangling.push(`${file}: ${name}`);
      }
    }
    expect(dangling).toEqual([]);
  });

  it('lists only error codes that src/ raises somewhere', () => {
    const raised = files('src', (n) => n.endsWith('.ts'))
      .map((f) => readFileSync(join(ROOT, f), 'utf8'))
      .join('\n');
    const unused = Object.keys(ERROR_CODES).filter((code) => code !== 'INTERNAL' && !new RegExp(`'${code}'`).test(raised.replace(/^\s+[A-Z_]+: '.*',$/gm, '')));
    expect(unused).toEqual([]);
  });
});
