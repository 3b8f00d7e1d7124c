import { didYouMean } from './did-you-mean.js';
import { ENV_VARS } from './env-vars.js';

const PREFIX = 'EXPORTER_';
const KNOWN = ENV_VARS.map((binding) => binding.name).filter((name) => name.startsWith(PREFIX));

/**
 * One warning per set `EXPORTER_*` variable the loader does not read (a typo such as
 * EXPORTER_POLL_INTERVAL would otherwise be ignored without a word), with a did-you-mean.
 * Names only: the values are never looked at, so a secret put in a misspelled variable is not echoed.
 */
export function unknownEnvWarnings(env: Readonly<Record<string, string | undefined>>): string[] {
  return Object.keys(env)
    .filter((name) => name.startsWith(PREFIX) && !KNOWN.includes(name) && env[name] !== undefined)
    .sort()
    .map((name) => `unknown environment variable ${name} is ignored${suggest(name)}`);
}

/** A name missing its unit suffix (EXPORTER_POLL_INTERVAL) is the likeliest slip, whatever the edit distance. */
function suggest(name: string): string {
  const truncated = KNOWN.find((known) => known.startsWith(`${name}_`));
  return truncated !== undefined ? `; did you mean "${truncated}"?` : didYouMean(name, KNOWN);
}
