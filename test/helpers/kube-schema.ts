// Offline validation of rendered Kubernetes objects against the OpenAPI schemas that the
// kubernetes-models packages ship (Kubernetes core and the Prometheus Operator CRDs).

interface KubeObject {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly metadata?: { readonly name?: string };
}

type ModelClass = new (data: unknown) => { validate(): void };

function modelModule(apiVersion: string): string {
  const group = apiVersion.includes('/') ? apiVersion.slice(0, apiVersion.indexOf('/')) : '';
  if (group === 'monitoring.coreos.com') return `@kubernetes-models/prometheus-operator/${apiVersion}`;
  return `kubernetes-models/${apiVersion}`;
}

/**
 * The schema violations of one object, each prefixed with its kind and name; an object
 * whose apiVersion/kind has no schema in those packages is itself a problem, so nothing
 * passes unchecked.
 */
export async function schemaProblems(object: KubeObject): Promise<string[]> {
  const where = `${object.kind ?? '?'}/${object.metadata?.name ?? '?'}`;
  if (object.apiVersion === undefined || object.kind === undefined) return [`${where}: no apiVersion or kind`];
  let Model: ModelClass | undefined;
  try {
    const mod = (await import(modelModule(object.apiVersion))) as Record<string, ModelClass | undefined>;
    Model = mod[object.kind];
  } catch {
    Model = undefined;
  }
  if (Model === undefined) return [`${where}: no schema for ${object.apiVersion} ${object.kind}`];
  try {
    new Model(object).validate();
    return [];
  } catch (err) {
    return [`${where}: ${(err as Error).message}`];
  }
}
