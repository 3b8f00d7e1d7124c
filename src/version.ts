import { readFileSync } from 'node:fs';

/** The package version, read once from package.json next to src/ or dist/src/. */
function readVersion(): string {
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'pulumi-update-exporter' && pkg.version) return pkg.version;
    } catch {
      // try the next candidate
    }
  }
  return '0.0.0';
}

export const VERSION = readVersion();
/** Set by the Docker build (ARG REVISION) through the environment at build time; "unknown" otherwise. */
export const REVISION = 'unknown';
