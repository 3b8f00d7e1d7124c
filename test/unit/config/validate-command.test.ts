import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { validateCommand } from '../../../src/config/validate-command.js';
import { clearSecretsForTests } from '../../../src/secrets.js';

const TOKEN = 'pul-validate-token-000000000000';
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pue-validate-'));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

afterEach(() => {
  clearSecretsForTests();
});

function run(configPath: string | undefined, env: Record<string, string> = {}): { code: number; lines: string[] } {
  const lines: string[] = [];
  const code = validateCommand(configPath, env, (line) => lines.push(line));
  return { code, lines };
}

describe('validateCommand', () => {
  it('prints "configuration OK" and the redacted effective config as YAML, and returns 0', () => {
    const file = join(dir, 'ok.yaml');
    writeFileSync(file, 'server:\n  port: 9100\n');
    const { code, lines } = run(file, { PULUMI_ACCESS_TOKEN: TOKEN, EXPORTER_ORGS: 'acme' });
    expect(code).toBe(0);
    expect(lines[0]).toBe('configuration OK');
    expect(lines.join('\n')).not.toContain(TOKEN);
    const printed = parse(lines.slice(1).join('\n')) as { server: { port: number }; pulumi: { accessToken: string } };
    expect(printed.server.port).toBe(9100);
    expect(printed.pulumi.accessToken).toBe('[REDACTED]');
  });

  it('notes a missing token without failing', () => {
    const file = join(dir, 'eq.yaml');
    writeFileSync(file, 'log:\n  level: warn\n');
    const { code, lines } = run(file);
    expect(code).toBe(0);
    expect(lines[0]).toBe('configuration OK');
    expect(lines.some((line) => line.startsWith('note: no Pulumi access token'))).toBe(true);
  });

  it('prints every problem and returns 2 for an invalid config', () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'server:\n  prot: 1\n');
    const { code, lines } = run(file, { EXPORTER_PORT: 'abc' });
    expect(code).toBe(2);
    expect(lines[0]).toBe('CONFIG_INVALID: invalid configuration (2 problems):');
    expect(lines).toContain(`  - server.prot: unknown key; did you mean "port"? (in ${file})`);
    expect(lines).toContain('  - server.port: must be a number, got "abc" (from EXPORTER_PORT)');
  });

  it('returns 2 naming the file when it cannot be read', () => {
    const missing = join(dir, 'missing.yaml');
    const { code, lines } = run(missing);
    expect(code).toBe(2);
    expect(lines).toEqual([`CONFIG_FILE_UNREADABLE: cannot read config file ${missing}: ENOENT`]);
  });

  it('accepts a PostgreSQL URL for EXPORTER_STATE and prints it without its password', () => {
    const url = 'postgresql://exporter:pg-pass-5678@db.internal:5432/exporter?sslmode=require';
    const { code, lines } = run(undefined, { PULUMI_ACCESS_TOKEN: TOKEN, EXPORTER_ORGS: 'acme', EXPORTER_STATE: url, EXPORTER_STATE_LEASE_SECONDS: '20' });
    expect(code).toBe(0);
    expect(lines.join('\n')).not.toContain('pg-pass-5678');
    const printed = parse(lines.slice(1).join('\n')) as { state: { path: string; leaseSeconds: number } };
    expect(printed.state).toEqual({ path: 'postgresql://exporter:[REDACTED]@db.internal:5432/exporter?sslmode=require', leaseSeconds: 20 });
  });

  it('reads the PostgreSQL URL from EXPORTER_STATE_FILE and never prints it', () => {
    const file = join(dir, 'state-url');
    writeFileSync(file, 'postgres://exporter:file-pass-9012@db/exporter\n');
    const { code, lines } = run(undefined, { PULUMI_ACCESS_TOKEN: TOKEN, EXPORTER_ORGS: 'acme', EXPORTER_STATE: 'ignored.db', EXPORTER_STATE_FILE: file });
    expect(code).toBe(0);
    expect(lines.join('\n')).not.toContain('file-pass-9012');
    expect(lines.join('\n')).not.toContain('ignored.db');
  });
});
