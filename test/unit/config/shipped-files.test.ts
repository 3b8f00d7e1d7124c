import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { ENV_VARS } from '../../../src/config/env-vars.js';
import { loadConfig } from '../../../src/config/load-config.js';
import { defaultConfig } from '../../../src/config/schema.js';
import { leafKeyPaths } from '../../../src/config/schema-paths.js';

const repoFile = (relative: string): string => fileURLToPath(new URL(`../../../${relative}`, import.meta.url));

describe('config/default.yaml', () => {
  it('holds every key with exactly the built-in default', () => {
    const parsed: unknown = parse(readFileSync(repoFile('config/default.yaml'), 'utf8'));
    expect(parsed).toEqual(defaultConfig());
  });

  it('loads to the built-in defaults', () => {
    expect(loadConfig({ configPath: repoFile('config/default.yaml'), env: {} })).toEqual(defaultConfig());
  });
});

describe('config/example.yaml', () => {
  it('is a valid configuration with filtered orgs and an OTLP endpoint', () => {
    const config = loadConfig({ configPath: repoFile('config/example.yaml'), env: {} });
    expect(config.pulumi.orgs.length).toBeGreaterThan(1);
    expect(config.pulumi.orgs.some((org) => org.include.length > 0 && org.exclude.length > 0)).toBe(true);
    expect(config.traces.exporter).toBe('otlp');
    expect(config.traces.endpoint).toMatch(/^https?:\/\/.+\/v1\/traces$/);
  });
});

describe('docs/configuration.md', () => {
  const doc = readFileSync(repoFile('docs/configuration.md'), 'utf8');

  it('documents every leaf key of the schema', () => {
    const keys = leafKeyPaths();
    expect(keys).toContain('pulumi.orgs[].include');
    expect(keys.filter((key) => !doc.includes(`\`${key}\``))).toEqual([]);
  });

  it('documents every environment variable the loader reads', () => {
    expect(ENV_VARS.map((v) => v.name).filter((name) => !doc.includes(`\`${name}\``))).toEqual([]);
  });

  it('states the default port', () => {
    expect(doc).toContain('9819');
  });
});
