import { ExporterError } from '../errors.js';
import type { Config } from './schema.js';

/**
 * What `run` and `once` need beyond a valid config: a Pulumi access token and at least one
 * organization. Throws CONFIG_MISSING_TOKEN telling the user how to provide them, or how
 * to try the exporter without a token (`demo`).
 */
export function requireToken(config: Config): void {
  const missing: string[] = [];
  if (config.pulumi.accessToken === '') {
    missing.push(
      'no Pulumi access token: set PULUMI_ACCESS_TOKEN (or PULUMI_ACCESS_TOKEN_FILE, a file holding it) to a token that can read your stacks',
    );
  }
  if (config.pulumi.orgs.length === 0) {
    missing.push('no organization to poll: set EXPORTER_ORGS (comma-separated names) or pulumi.orgs in the config file');
  }
  if (missing.length === 0) return;
  throw new ExporterError(
    'CONFIG_MISSING_TOKEN',
    [
      ...missing,
      'to try the exporter without a Pulumi account, run `npm run demo` or `pulumi-update-exporter demo` (a bundled simulator)',
    ].join('\n'),
  );
}
