import picomatch from 'picomatch';
import type { OrgConfig } from '../config/schema.js';

/** Glob options: case-sensitive, and `*` also matches names that start with a dot. */
const GLOB_OPTIONS: picomatch.PicomatchOptions = { dot: true };

/**
 * The stack selection of one org: picomatch globs match `project/stack`; an empty include
 * list selects every stack; an exclude match always wins over an include match.
 */
export function stackFilter(org: OrgConfig): (project: string, stack: string) => boolean {
  const excluded = org.exclude.length > 0 ? picomatch([...org.exclude], GLOB_OPTIONS) : () => false;
  const included = org.include.length > 0 ? picomatch([...org.include], GLOB_OPTIONS) : () => true;
  return (project, stack) => {
    const name = `${project}/${stack}`;
    return !excluded(name) && included(name);
  };
}
