import { describe, expect, it } from 'vitest';
import {
  nextToken,
  toHistoryPage,
  toStackSummary,
  wireListStacksResponse,
  wireUpdatesResponse,
} from '../../../src/pulumi/wire-schema.js';

const ref = { org: 'acme', project: 'web', stack: 'prod' };

function serviceEntry(overrides: Record<string, unknown> = {}, info: Record<string, unknown> = {}): unknown {
  return {
    info: {
      kind: 'update',
      startTime: 1733780162,
      message: 'deploy web',
      environment: {
        'git.head': 'abc123',
        'git.author.email': 'dev@example.com',
        'ci.system': 'GitHub',
        'git.dirty': true,
        nested: { a: 1 },
      },
      config: { 'aws:region': { string: 'us-east-1', secret: false }, dbPassword: { string: 'c2VjcmV0', secret: true } },
      result: 'succeeded',
      endTime: 1733780200,
      version: 7,
      resourceChanges: { create: 2, delete: 0, same: 5, update: 0 },
      resourceCount: 7,
      deployment: { huge: true },
      ...info,
    },
    updateID: 'c30c74e6-9576-4c63-95a4-4f96e7793ebb',
    version: 7,
    latestVersion: 9,
    requestedBy: { name: 'Dev One', githubLogin: 'dev1', avatarUrl: 'https://x/y.png', email: 'dev@example.com' },
    requestedByToken: 'tok-name',
    githubCommitInfo: { sha: 'abc123' },
    policyPacks: [{ name: 'p', version: 1 }],
    ...overrides,
  };
}

function mapOne(entry: unknown) {
  const parsed = wireUpdatesResponse.parse({ updates: [entry], itemsPerPage: 10, total: 1 });
  const r = toHistoryPage(ref, parsed, 1, 10);
  if (!r.ok) throw new Error(r.problem);
  const u = r.page.updates[0];
  if (!u) throw new Error('no update');
  return u;
}

describe('service-format history mapping', () => {
  it('maps an entry to the domain with only what the exporter needs', () => {
    expect(mapOne(serviceEntry())).toEqual({
      stack: ref,
      updateId: 'c30c74e6-9576-4c63-95a4-4f96e7793ebb',
      kind: 'update',
      version: 7,
      result: 'succeeded',
      startTime: 1733780162,
      endTime: 1733780200,
      message: 'deploy web',
      environment: { 'git.head': 'abc123', 'ci.system': 'GitHub' },
      resourceChanges: { create: 2, same: 5 },
      resourceCount: 7,
      requestedBy: { name: 'Dev One', githubLogin: 'dev1' },
    });
  });

  it('never carries config values, e-mail addresses or token names into the domain', () => {
    const text = JSON.stringify(mapOne(serviceEntry()));
    expect(text).not.toContain('us-east-1');
    expect(text).not.toContain('c2VjcmV0');
    expect(text).not.toContain('tok-name');
    expect(text).not.toContain('avatarUrl');
    expect(text).not.toContain('dev@example.com');
    expect(text).not.toContain('deployment');
  });

  it('treats endTime 0 of a running update as no end time', () => {
    const u = mapOne(serviceEntry({}, { result: 'in-progress', endTime: 0, resourceChanges: null }));
    expect(u.endTime).toBeUndefined();
    expect('endTime' in u).toBe(false);
    expect(u.result).toBe('in-progress');
    expect(u.resourceChanges).toEqual({});
  });

  it('falls back to the top-level version and tolerates missing optional fields', () => {
    const u = mapOne({ info: { kind: 'refresh', startTime: 5, result: 'failed' }, updateID: 'u-1', version: 3 });
    expect(u).toEqual({
      stack: ref,
      updateId: 'u-1',
      kind: 'refresh',
      version: 3,
      result: 'failed',
      startTime: 5,
      message: '',
      environment: {},
      resourceChanges: {},
    });
  });

  it('keeps a preview kind as the service spells it', () => {
    expect(mapOne(serviceEntry({}, { kind: 'Pupdate' })).kind).toBe('Pupdate');
  });

  it('reports an entry without any version as a problem naming its index', () => {
    const parsed = wireUpdatesResponse.parse({
      updates: [serviceEntry(), { info: { kind: 'update', startTime: 1, result: 'succeeded' }, updateID: 'x' }],
      itemsPerPage: 10,
      total: 2,
    });
    const r = toHistoryPage(ref, parsed, 1, 10);
    expect(r).toEqual({ ok: false, problem: 'updates.1: update x has no version' });
  });

  it('rejects an entry without updateID or with a non-numeric startTime', () => {
    expect(wireUpdatesResponse.safeParse({ updates: [{ info: { kind: 'u', startTime: 1, result: 'x' } }] }).success).toBe(false);
    expect(
      wireUpdatesResponse.safeParse({ updates: [{ updateID: 'a', info: { kind: 'u', startTime: '1', result: 'x' } }] }).success,
    ).toBe(false);
  });

  it('accepts null updates as an empty page and fills a missing total with what is known', () => {
    const parsed = wireUpdatesResponse.parse({ updates: null });
    expect(toHistoryPage(ref, parsed, 3, 50)).toEqual({ ok: true, page: { updates: [], itemsPerPage: 50, total: 100 } });
  });
});

describe('stack list mapping', () => {
  it('keeps lastUpdate and resourceCount and drops everything else', () => {
    const parsed = wireListStacksResponse.parse({
      stacks: [
        { id: 'x', orgName: 'acme', projectName: 'web', stackName: 'prod', lastUpdate: 1612481387, resourceCount: 12, links: {} },
        { orgName: 'acme', projectName: 'web', stackName: 'dev' },
      ],
      continuationToken: '5-',
    });
    expect(parsed.stacks?.map(toStackSummary)).toEqual([
      { org: 'acme', project: 'web', stack: 'prod', lastUpdate: 1612481387, resourceCount: 12 },
      { org: 'acme', project: 'web', stack: 'dev' },
    ]);
  });

  it('rejects a stack row without its names', () => {
    expect(wireListStacksResponse.safeParse({ stacks: [{ orgName: 'acme', projectName: 'web' }] }).success).toBe(false);
  });
});

describe('nextToken', () => {
  it('treats absent, null and empty tokens as the end', () => {
    expect(nextToken(undefined)).toBeNull();
    expect(nextToken(null)).toBeNull();
    expect(nextToken('')).toBeNull();
    expect(nextToken('5-')).toBe('5-');
  });
});
