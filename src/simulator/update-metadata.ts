import { COMMIT_MESSAGES } from './catalog.js';
import type { Prng } from './prng.js';
import type { StackContext, UserInfo } from './sim-model.js';

/** Who ran an update and from where: the history entry's message, environment and requester. */
export interface UpdateMetadata {
  readonly message: string;
  readonly environment: Record<string, string>;
  readonly requestedBy: UserInfo;
  readonly githubCommitInfo?: Record<string, unknown>;
}

/**
 * The `environment` keys the CLI writes (shared pulumi-api.md 5.1). Committer/author e-mails are
 * fake `@example.com` addresses: the exporter must never export them, and tests check that.
 */
export function updateMetadata(ctx: StackContext, rng: Prng): UpdateMetadata {
  const style = rng.weighted<'ci' | 'local' | 'auto' | 'bare'>([
    ['ci', 0.6],
    ['local', 0.3],
    ['auto', 0.07],
    ['bare', 0.03],
  ]);
  const person = rng.pick(ctx.users);
  const sha = rng.hex(40);
  const branch = style === 'ci' && rng.chance(0.8) ? 'refs/heads/main' : `refs/heads/${person.githubLogin}/change-${rng.int(100, 999)}`;
  const commitMessage = rng.pick(COMMIT_MESSAGES);
  const environment: Record<string, string> = {};
  if (style !== 'bare') {
    Object.assign(environment, {
      'git.head': sha,
      'git.headName': branch,
      'git.dirty': style === 'local' && rng.chance(0.3) ? 'true' : 'false',
      'git.committer': person.name,
      'git.committer.email': `${person.githubLogin}@example.com`,
      'git.author': person.name,
      'git.author.email': `${person.githubLogin}@example.com`,
      'vcs.owner': ctx.repoOwner,
      'vcs.repo': ctx.repoName,
      'vcs.kind': 'github.com',
      'vcs.root': 'infra',
    });
  }
  const buildId = String(rng.int(1_000_000_000, 9_999_999_999));
  if (style === 'ci' || (style === 'auto' && rng.chance(0.5))) {
    Object.assign(environment, {
      'ci.system': 'GitHub',
      'ci.build.id': buildId,
      'ci.build.number': String(rng.int(100, 9999)),
      'ci.build.type': branch === 'refs/heads/main' ? 'PushBuild' : 'PullRequestBuild',
      'ci.build.url': `https://github.com/${ctx.repoOwner}/${ctx.repoName}/actions/runs/${buildId}`,
    });
    if (branch !== 'refs/heads/main') {
      environment['ci.pr.number'] = String(rng.int(1, 2000));
      environment['ci.pr.headSHA'] = sha;
    }
  }
  environment['exec.kind'] = style === 'auto' ? 'auto.local' : 'cli';
  const viaCi = environment['ci.system'] !== undefined;
  const message = viaCi || rng.chance(0.5) ? commitMessage : '';
  const requestedBy = viaCi ? ctx.ciBot : person;
  return {
    message,
    environment,
    requestedBy,
    ...(viaCi
      ? {
          githubCommitInfo: {
            slug: `${ctx.repoOwner}/${ctx.repoName}`,
            sha,
            url: `https://github.com/${ctx.repoOwner}/${ctx.repoName}/commit/${sha}`,
            message: commitMessage,
            author: { name: person.name, githubLogin: person.githubLogin, avatarUrl: person.avatarUrl },
          },
        }
      : {}),
  };
}
