import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The parts of deploy/grafana/pulumi-update-exporter.json the deploy tests read. */

export const DASHBOARD_PATH = 'deploy/grafana/pulumi-update-exporter.json';

export interface DataSourceRef {
  readonly type?: string;
  readonly uid?: string;
}

export interface Target {
  readonly refId: string;
  readonly expr: string;
  readonly datasource?: DataSourceRef;
  readonly range?: boolean;
  readonly instant?: boolean;
  readonly exemplar?: boolean;
  readonly format?: string;
}

export interface DataLink {
  readonly title: string;
  readonly url: string;
  readonly targetBlank?: boolean;
}

export interface Panel {
  readonly id: number;
  readonly type: string;
  readonly title: string;
  readonly interval?: string;
  readonly gridPos: { readonly x: number; readonly y: number; readonly w: number; readonly h: number };
  readonly datasource?: DataSourceRef;
  readonly targets?: readonly Target[];
  readonly panels?: readonly Panel[];
  readonly fieldConfig?: { readonly defaults?: { readonly links?: readonly DataLink[] } };
}

export interface Variable {
  readonly type: string;
  readonly name: string;
  readonly label?: string;
  readonly query?: string | { readonly query: string };
  readonly datasource?: DataSourceRef;
  readonly allValue?: string;
  readonly includeAll?: boolean;
  readonly current?: { readonly value?: string | readonly string[] };
}

export interface Dashboard {
  readonly uid: string;
  readonly title: string;
  readonly schemaVersion: number;
  readonly panels: readonly Panel[];
  readonly templating: { readonly list: readonly Variable[] };
}

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export function readDashboard(): Dashboard {
  return JSON.parse(readFileSync(`${ROOT}${DASHBOARD_PATH}`, 'utf8')) as Dashboard;
}

/** Every panel, rows included, with the panels of collapsed rows. */
export function allPanels(panels: readonly Panel[]): Panel[] {
  return panels.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);
}

export function panelTargets(dashboard: Dashboard): { panel: Panel; target: Target }[] {
  return allPanels(dashboard.panels)
    .filter((p) => p.type !== 'row')
    .flatMap((p) => (p.targets ?? []).map((target) => ({ panel: p, target })));
}

export function variableQuery(v: Variable): string {
  return typeof v.query === 'string' ? v.query : (v.query?.query ?? '');
}

/** `label_values(selector, label)` split into its parts, or undefined for another query. */
export function labelValuesQuery(v: Variable): { selector: string; label: string } | undefined {
  const m = /^label_values\((.+),\s*(\w+)\)$/.exec(variableQuery(v));
  return m ? { selector: m[1]!, label: m[2]! } : undefined;
}
