import { describe, expect, it } from 'vitest';
import { defaultConfig } from '../../../src/config/schema.js';
import { matchesGlob, stackFilter } from '../../../src/sync/stack-filter.js';

describe('matchesGlob', () => {
  const table: readonly [pattern: string, text: string, expected: boolean][] = [
    ['network/prod', 'network/prod', true],
    ['network/prod', 'network/production', false],
    ['network/*', 'network/prod', true],
    ['network/*', 'network/', true],
    ['network/*', 'network', false],
    ['*/prod', 'api/prod', true],
    ['*/prod', 'api/v2/prod', false],
    ['*', 'network/prod', false],
    ['**', 'network/prod', true],
    ['**', '', true],
    ['**/prod', 'prod', true],
    ['**/prod', 'a/b/prod', true],
    ['**/prod', 'a/b/preprod', false],
    ['network/**', 'network', true],
    ['network/**', 'network/a/b', true],
    ['network/**', 'networking/a', false],
    ['k8s-*/*', 'k8s-eu/prod', true],
    ['k8s-*/*', 'k8s/prod', false],
    ['a**z', 'a/b/z', true],
    ['dev-?', 'dev-1', true],
    ['dev-?', 'dev-12', false],
    ['a?b', 'a/b', false],
    ['*/pr-*', 'web/pr-123', true],
    ['app.v1/*', 'app.v1/prod', true],
    ['app.v1/*', 'appXv1/prod', false],
    ['[ab]/c', '[ab]/c', true],
    ['[ab]/c', 'a/c', false],
    ['(x)|y+/s', '(x)|y+/s', true],
    ['Network/*', 'network/prod', false],
  ];

  it.each(table)('%s against %s is %s', (pattern, text, expected) => {
    expect(matchesGlob(pattern, text)).toBe(expected);
  });
});

describe('stackFilter', () => {
  const org = (include: string[], exclude: string[]) =>
    defaultConfig({ pulumi: { orgs: [{ name: 'acme', include, exclude }] } }).pulumi.orgs[0]!;

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
