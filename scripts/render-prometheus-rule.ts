import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';

// deploy/prometheus/alerts.yml is the one source of the alert rules. The Prometheus
// Operator's PrometheusRule in deploy/kubernetes/components/prometheus-rule/ is rendered
// from it by `npm run deploy:rules`; a test fails when the two drift apart.

const ROOT = fileURLToPath(new URL('../', import.meta.url));
export const RULES_FILE = 'deploy/prometheus/alerts.yml';
export const PROMETHEUS_RULE_FILE = 'deploy/kubernetes/components/prometheus-rule/prometheusrule.yaml';

const HEADER = [
  `# Rendered from ${RULES_FILE} by \`npm run deploy:rules\`: edit that file, not this one.`,
  '# A test fails when the two differ. What each alert means: docs/operations.md.',
  '',
].join('\n');

/** The PrometheusRule object holding exactly the rule groups of alerts.yml. */
export function renderPrometheusRule(alertsYaml: string): string {
  const rules = parse(alertsYaml) as { groups: unknown[] };
  const object = {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'PrometheusRule',
    metadata: { name: 'pulumi-update-exporter' },
    spec: { groups: rules.groups },
  };
  return HEADER + stringify(object, { lineWidth: 0 });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const rendered = renderPrometheusRule(readFileSync(`${ROOT}${RULES_FILE}`, 'utf8'));
  writeFileSync(`${ROOT}${PROMETHEUS_RULE_FILE}`, rendered);
  console.log(`wrote ${PROMETHEUS_RULE_FILE}`);
}
