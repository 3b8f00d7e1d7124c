import { describe, expect, it } from 'vitest';
import { negotiateFormat, type ExpositionFormat } from '../../../src/metrics/negotiate-format.js';

describe('negotiateFormat', () => {
  it.each<[string, string | undefined, ExpositionFormat]>([
    ['no Accept header', undefined, 'prometheus'],
    ['an empty header', '', 'prometheus'],
    ['a browser', 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8', 'prometheus'],
    ['the Prometheus text format', 'text/plain;version=0.0.4', 'prometheus'],
    ['OpenMetrics alone', 'application/openmetrics-text', 'openmetrics'],
    ['OpenMetrics 1.0.0 with parameters', 'application/openmetrics-text; version=1.0.0; charset=utf-8', 'openmetrics'],
    [
      'Prometheus 2.x scrape defaults',
      'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1',
      'openmetrics',
    ],
    ['OpenMetrics ranked below text', 'application/openmetrics-text;q=0.3,text/plain;q=0.9', 'prometheus'],
    ['OpenMetrics refused with q=0', 'application/openmetrics-text;q=0', 'prometheus'],
    ['upper-case media types', 'Application/OpenMetrics-Text; Q=0.8, text/plain; q=0.5', 'openmetrics'],
    ['a malformed quality', 'application/openmetrics-text;q=abc,text/plain', 'prometheus'],
  ])('answers %s with %s', (_name, accept, expected) => {
    expect(negotiateFormat(accept)).toBe(expected);
  });
});
