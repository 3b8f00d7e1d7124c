import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The directory holding this package's package.json, found by walking up from a module URL.
 * Works from src/ (tsx, vitest) and from dist/src/ (compiled) alike.
 */
export function findPackageRoot(fromUrl: string = import.meta.url): string | undefined {
  let dir = dirname(fileURLToPath(fromUrl));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

/** Where the bundled Pulumi sample fixtures live, if this installation has them. */
export function defaultFixturesDir(): string | undefined {
  const root = findPackageRoot();
  if (root === undefined) return undefined;
  const dir = join(root, 'fixtures', 'pulumi-samples');
  return existsSync(dir) ? dir : undefined;
}
