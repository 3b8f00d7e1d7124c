// Offline validation of rendered Kubernetes objects against the OpenAPI schemas that the
// kubernetes-models packages ship (Kubernetes core and the Prometheus Operator CRDs).

interface KubeObject {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly metadata?: { readonly name?: string };
}

type ModelClass = new (data: unknown) => { validate(): void };

/** The API groups the deploy files use, each with the module of its models. */
const MODELS: Readonly<Record<string, () => Promise<Record<string, unknown>>>> = {
  v1: () => import('kubernetes-models/v1'),
  'apps/v1': () => import('kubernetes-models/apps/v1'),
  'policy/v1': () => import('kubernetes-models/policy/v1'),
  'networking.k8s.io/v1': () => import('kubernetes-models/networking.k8s.io/v1'),
  'monitoring.coreos.com/v1': () => import('@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1'),
};

/**
 * The schema violations of one object, each prefixed with its kind and name; an object
 * whose apiVersion/kind has no schema in those packages is itself a problem, so nothing
 * passes unchecked.
 */
export async function schemaProblems(object: KubeObject): Promise<string[]> {
  const where = `${object.kind ?? '?'}/${object.metadata?.name ?? '?'}`;
  if (object.apiVersion === undefined || object.kind === undefined) return [`${where}: no apiVersion or kind`];
  const load = MODELS[object.apiVersion];
  const Model = load === undefined ? undefined : ((await load())[object.kind] as ModelClass | undefined);
  if (Model === undefined) return [`${where}: no schema for ${object.apiVersion} ${object.kind}`];
  try {
    new Model(object).validate();
    return [];
  } catch (err) {
    return [`${where}: ${(err as Error).message}`];
  }
}
