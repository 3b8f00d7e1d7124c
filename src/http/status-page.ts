import type { BackfillStatus } from '../domain/backfill-status.js';
import type { StatusReport, UpdateLinks } from './status-report.js';

// The status page at `/`: server-rendered HTML with inline styles, no scripts, no build
// step and nothing fetched from elsewhere, so it works offline and under a strict CSP.
// Every name from Pulumi Cloud passes through escapeHtml.

const HTML_ESCAPES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c] ?? c);
}

/** Only http(s) URLs become links; anything else (javascript:, data:) is shown as text. */
function link(href: string | undefined, text: string): string {
  if (href === undefined || !/^https?:\/\//i.test(href)) return escapeHtml(text);
  return `<a href="${escapeHtml(href)}" rel="noopener noreferrer">${escapeHtml(text)}</a>`;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s`;
  const h = Math.floor(m / 60);
  return h < 48 ? `${h}h ${m % 60}m` : `${Math.floor(h / 24)}d ${h % 24}h`;
}

const stackName = (r: { org: string; project: string; stack: string }): string => `${r.org}/${r.project}/${r.stack}`;

function table(caption: string, empty: string, head: readonly string[], rows: readonly (readonly string[])[]): string {
  if (rows.length === 0) return `<section><h2>${escapeHtml(caption)}</h2><p class="empty">${escapeHtml(empty)}</p></section>`;
  const th = head.map((h) => `<th scope="col">${escapeHtml(h)}</th>`).join('');
  const body = rows.map((cells) => `<tr>${cells.map((c) => `<td>${c}</td>`).join('')}</tr>`).join('\n');
  return `<section><h2>${escapeHtml(caption)}</h2><table><thead><tr>${th}</tr></thead><tbody>\n${body}\n</tbody></table></section>`;
}

function traceCell(l: UpdateLinks): string {
  return l.traceUrl === undefined ? `<code>${escapeHtml(l.traceId)}</code>` : link(l.traceUrl, 'trace');
}

function resultCell(result: string): string {
  const cls = result === 'succeeded' ? 'ok' : result === 'failed' ? 'bad' : 'warn';
  return `<span class="${cls}">${escapeHtml(result)}</span>`;
}

function backfillSection(backfill: BackfillStatus | undefined): string {
  const parts: string[] = [];
  const run = backfill?.running;
  if (run !== undefined) {
    const rows: Array<[string, string]> = [
      ['phase', run.phase],
      ['stacks listed', String(run.stacksListed)],
      ['stacks to read', run.stacksToRead === undefined ? 'not known until every org is listed' : String(run.stacksToRead)],
      ['stacks read', String(run.stacksRead)],
      ['stacks pending', String(run.stacksPending)],
      ['updates discovered', String(run.updatesDiscovered)],
      ['updates exported', String(run.updatesExported)],
      ['updates expected in total (estimate)', run.updatesEstimated === undefined ? 'unknown yet' : `~${run.updatesEstimated}`],
      ['events read', String(run.events)],
      ['elapsed', `${formatSeconds(run.elapsedSeconds)} s`],
      ['time left (estimate from the rate so far)', run.etaSeconds === undefined ? 'unknown yet' : `~${run.etaSeconds} s`],
    ];
    parts.push(
      '<section><h2>Poll cycle running</h2>\n<table class="facts">\n' +
        rows.map(([k, v]) => `<tr><th scope="row">${escapeHtml(k)}</th><td>${escapeHtml(v)}</td></tr>`).join('\n') +
        '\n</table></section>',
    );
  }
  const last = backfill?.lastFinished;
  if (last !== undefined) {
    parts.push(
      `<p>${last.firstRun ? 'First run' : 'Last backfill'}: <strong>${escapeHtml(last.result)}</strong> at ${escapeHtml(last.finishedAt)} ` +
        `after ${escapeHtml(formatSeconds(last.durationSeconds))} s; ${escapeHtml(String(last.updatesExported))} updates and ` +
        `${escapeHtml(String(last.events))} events exported from ${escapeHtml(String(last.stacksRead))} stacks</p>`,
    );
  }
  return parts.join('\n');
}

/** Seconds with at most three decimals. */
function formatSeconds(s: number): string {
  return Number.isFinite(s) ? String(Math.round(s * 1000) / 1000) : '?';
}

const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:1.5rem;color:#1d2430;background:#fff}
h1{font-size:1.4rem;margin:0 0 .25rem}h2{font-size:1.1rem;margin:1.5rem 0 .5rem}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.3rem .6rem;border-bottom:1px solid #e3e6ea;vertical-align:top}
th{background:#f5f6f8;font-weight:600}td.num,th.num{text-align:right}
.ok{color:#176d2c}.bad{color:#b3261e;font-weight:600}.warn{color:#8a5a00}.empty{color:#5f6b7a}
nav a{margin-right:1rem}code{font-size:12px}table.facts{width:auto}
`;

/** The whole page. */
export function renderStatusPage(report: StatusReport): string {
  const last = report.lastPoll;
  const poll = last
    ? `Last poll: ${resultCell(last.result === 'success' ? 'succeeded' : last.result)} at ${escapeHtml(last.finishedAt)} ` +
      `in ${escapeHtml(formatDuration(last.durationSeconds))}; ${last.updatesExported} updates exported, ` +
      `${last.stacksFailed} stacks failed, backlog ${last.backlog}.`
    : 'Last poll: none yet.';

  const orgs = table(
    'Organizations',
    'No organization listed yet.',
    ['org', 'stacks watched', 'running', 'failing', 'last listing'],
    report.orgs.map((o) => [
      escapeHtml(o.org),
      String(o.stacksWatched),
      String(o.inProgress),
      String(o.failingStacks),
      o.listingError === undefined ? '<span class="ok">ok</span>' : `<span class="bad">${escapeHtml(o.listingError)}</span>`,
    ]),
  );
  const running = table(
    'Updates in progress',
    'Nothing is running.',
    ['stack', 'kind', 'version', 'started', 'running for', 'links'],
    report.inProgress.map((u) => [
      escapeHtml(stackName(u)),
      escapeHtml(u.kind),
      String(u.version),
      escapeHtml(u.startedAt),
      escapeHtml(formatDuration(u.runningSeconds)),
      `${link(u.consoleUrl, 'console')}`,
    ]),
  );
  const failing = table(
    'Stacks whose last update failed or was cancelled',
    'None.',
    ['stack', 'kind', 'result', 'ended'],
    report.failingStacks.map((s) => [escapeHtml(stackName(s)), escapeHtml(s.kind), resultCell(s.result), escapeHtml(s.endedAt)]),
  );
  const recent = table(
    'Recent updates',
    'No update exported yet.',
    ['stack', 'kind', 'result', 'duration', 'ended', 'trace', 'console'],
    report.recentUpdates.map((u) => [
      escapeHtml(stackName(u)),
      escapeHtml(u.kind),
      resultCell(u.result),
      escapeHtml(formatDuration(u.durationSeconds)),
      escapeHtml(u.endedAt),
      traceCell(u),
      link(u.consoleUrl, `#${u.version}`),
    ]),
  );

  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Pulumi update exporter</title>
<style>${STYLE}</style>
</head>
<body>
<h1>Pulumi update exporter</h1>
<p>Version ${escapeHtml(report.version)} · ${report.ready ? '<span class="ok">ready</span>' : '<span class="warn">not ready</span>'} · generated ${escapeHtml(report.generatedAt)}</p>
<p id="last-poll">${poll}</p>
<nav><a href="metrics">metrics</a><a href="status.json">status.json</a><a href="readyz">readyz</a><a href="healthz">healthz</a></nav>
${backfillSection(report.backfill)}
${orgs}
${running}
${failing}
${recent}
</body>
</html>
`;
}
