import { describe, expect, it } from 'vitest';
import { defaultConfig } from '../../../src/config/schema.js';
import { stackFilter } from '../../../src/sync/stack-filter.js';

describe('stackFilter', () => {
  const org = (include: string[], exclude: string[]) =>
    defaultConfig({ pulumi: { orgs: [{ name: 'acme', include, exclude }] } }).pulumi.orgs[0]!;

  // The documented picomatch syntax (docs/configuration.md, "Stack selection globs").
  const table: readonly [pattern: string, project: string, stack: string, expected: boolean][] = [
    ['network/prod', 'network', 'prod', true],
    ['network/prod', 'network', 'production', false],
    ['network/*', 'network', 'prod', true],
    ['*/prod', 'api', 'prod', true],
    ['*/prod', '.hidden', 'prod', true],
    ['*', 'network', 'prod', false],
    ['**', 'network', 'prod', true],
    ['network/**', 'network', 'prod', true],
    ['network/**', 'networking', 'prod', false],
    ['k8s-*/*', 'k8s-eu', 'prod', true],
    ['k8s-*/*', 'k8s', 'prod', false],
    ['*/dev-?', 'web', 'dev-1', true],
    ['*/dev-?', 'web', 'dev-12', false],
    ['*/pr-*', 'web', 'pr-123', true],
    ['app.v1/*', 'app.v1', 'prod', true],
    ['app.v1/*', 'appXv1', 'prod', false],
    ['{web,api}/prod', 'api', 'prod', true],
    ['{web,api}/prod', 'db', 'prod', false],
    ['[ab]pp/*', 'bpp', 'dev', true],
    ['[ab]pp/*', 'cpp', 'dev', false],
    ['Network/*', 'network', 'prod', false],
  ];

  it.each(table)('include %s selects %s/%s: %s', (pattern, project, stack, expected) => {
    expect(stackFilter(org([pattern], []))(project, stack)).toBe(expected);
    expect(stackFilter(org([], [pattern]))(project, stack)).toBe(!expected);
  });

  it('selects every stack when include is empty', () => {
    const keep = stackFilter(org([], []));
    expect(keep('anything', 'dev')).toBe(true);
  });

  it('selects only included stacks', () => {
    const keep = stackFilter(org(['network/*', '*/prod'], []));
    expect(keep('network', 'dev')).toBe(true);
    expect(keep('api', 'prod')).toBe(true);
    expect(keep('api', 'dev')).toBe(false);
  });

  it('lets an exclude win over an include and over the empty include', () => {
    expect(stackFilter(org(['network/*'], ['*/pr-*']))('network', 'pr-7')).toBe(false);
    expect(stackFilter(org([], ['sandbox-*/*']))('sandbox-joe', 'dev')).toBe(false);
    expect(stackFilter(org([], ['sandbox-*/*']))('web', 'dev')).toBe(true);
  });
});
