import type { AttributeValue } from '../domain/trace.js';
import type { UpdateInfo } from '../domain/update.js';

type MutableAttributes = Record<string, AttributeValue>;

// Re-exported so existing importers (convert-update.ts) keep their import path.
export { isPreviewKind } from '../domain/update.js';

/**
 * Console link of an update: `{consoleUrl}/{org}/{project}/{stack}/updates/{version}`,
 * or `/previews/{updateID}` for a preview (shared pulumi-api.md 2.5).
 */
export function consoleUrlOf(
  update: Pick<UpdateInfo, 'stack' | 'updateId' | 'version'>,
  consoleUrl: string,
  preview: boolean,
): string {
  const base = consoleUrl.replace(/\/+$/, '');
  const { org, project, stack } = update.stack;
  const path = [org, project, stack].map(encodeURIComponent).join('/');
  return preview
    ? `${base}/${path}/previews/${encodeURIComponent(update.updateId)}`
    : `${base}/${path}/updates/${update.version}`;
}

const PROVIDER_NAMES: Readonly<Record<string, string>> = {
  'github.com': 'github',
  'gitlab.com': 'gitlab',
  'bitbucket.org': 'bitbucket',
};

const HOST = /^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+(:\d+)?$/;
const PATH_PART = /^[^\s?#@\\]+$/;

function nonEmpty(env: Readonly<Record<string, string>>, key: string): string | undefined {
  const v = env[key];
  return v !== undefined && v.trim().length > 0 ? v.trim() : undefined;
}

/**
 * Maps the update's `environment` to `vcs.*` and CI attributes. A fixed allow-list:
 * committer/author names and e-mail addresses, `updatePlan`, `stack.environments` and
 * anything unknown are never copied.
 */
export function environmentAttributes(env: Readonly<Record<string, string>>): MutableAttributes {
  const out: MutableAttributes = {};
  const head = nonEmpty(env, 'git.head');
  if (head) out['vcs.ref.head.revision'] = head;

  const headName = nonEmpty(env, 'git.headName');
  if (headName) {
    if (headName.startsWith('refs/heads/')) {
      out['vcs.ref.head.name'] = headName.slice('refs/heads/'.length);
      out['vcs.ref.head.type'] = 'branch';
    } else if (headName.startsWith('refs/tags/')) {
      out['vcs.ref.head.name'] = headName.slice('refs/tags/'.length);
      out['vcs.ref.head.type'] = 'tag';
    } else {
      out['vcs.ref.head.name'] = headName;
    }
  }

  // The CLI writes vcs.kind = the host (github.com, gitlab.com, dev.azure.com, a GHE host),
  // vcs.owner = the first path segment and vcs.repo = the rest ("project/_git/repo" on Azure).
  const kind = nonEmpty(env, 'vcs.kind');
  const owner = nonEmpty(env, 'vcs.owner');
  const repo = nonEmpty(env, 'vcs.repo');
  if (owner) out['vcs.owner.name'] = owner;
  if (repo) out['vcs.repository.name'] = repo.slice(repo.lastIndexOf('/') + 1);
  if (kind) {
    const provider = PROVIDER_NAMES[kind.toLowerCase()];
    if (provider) out['vcs.provider.name'] = provider;
  }
  if (kind && owner && repo && HOST.test(kind) && PATH_PART.test(owner) && PATH_PART.test(repo)) {
    out['vcs.repository.url.full'] = `https://${kind.toLowerCase()}/${owner}/${repo}`;
  }

  const pr = nonEmpty(env, 'ci.pr.number');
  if (pr) out['vcs.change.id'] = pr;

  const ciSystem = nonEmpty(env, 'ci.system');
  if (ciSystem) out['pulumi.ci.system'] = ciSystem;
  const buildUrl = nonEmpty(env, 'ci.build.url');
  if (buildUrl && /^https?:\/\//i.test(buildUrl)) {
    // Drop any user:password@ a CI system might have put into the link.
    out['pulumi.ci.build.url'] = buildUrl.replace(/^(https?:\/\/)[^/@]*@/i, '$1');
  }

  const execKind = nonEmpty(env, 'exec.kind');
  if (execKind) out['pulumi.update.exec_kind'] = execKind;
  return out;
}
