/**
 * One self-contained HTML file (no script, no external fetch): when and on what server it was
 * made, a table-by-table isolation map coloured by status, then the findings grouped by object,
 * worst first, each distinct fix once. Everything from the database is escaped: object names and
 * policy text are attacker-influenced in a shared database.
 */
import { LEVELS, type Finding, type Level } from '../finding.ts';
import type { TableStatus } from '../runner.ts';
import { groupFindings, type FindingGroup } from './groups.ts';
import { summaryLine } from './text.ts';
import { visible } from './visible.ts';

export interface HtmlInput {
  readonly database: string;
  readonly findings: readonly Finding[];
  readonly suppressed: number;
  readonly tables: readonly TableStatus[];
  readonly notes: readonly string[];
  /** The server's version (SHOW server_version). */
  readonly serverVersion?: string;
  /** When the audit ran; left out, the report has no clock in it (tests compare it whole). */
  readonly generatedAt?: Date;
}

const LABEL: Record<Level, string> = { error: 'error', warn: 'warning', info: 'info' };

export function formatHtml(input: HtmlInput): string {
  const byObject = new Map<string, Finding[]>();
  for (const f of input.findings) byObject.set(f.object, [...(byObject.get(f.object) ?? []), f]);
  const mapped = new Set(input.tables.map((t) => t.object));
  const others = input.findings.filter((f) => !mapped.has(f.object));
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tenantfence audit: ${esc(input.database)}</title>
<style>${CSS}</style>
</head>
<body>
<h1>tenantfence audit <span class="db">${esc(input.database)}</span></h1>
<p id="meta" class="meta">database <b>${esc(input.database)}</b>${input.serverVersion ? `, PostgreSQL <span id="server-version">${esc(input.serverVersion)}</span>` : ''}${input.generatedAt ? `, <time datetime="${input.generatedAt.toISOString()}">${input.generatedAt.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC')}</time>` : ''}</p>
<p id="summary" class="summary ${worst(input.findings)}">${esc(summaryLine({ ...input, tables: input.tables.length }))}</p>
${input.notes.map((n) => `<p class="note">${esc(n)}</p>`).join('\n')}
<h2>Isolation map</h2>
<table id="map">
<thead><tr><th>table</th><th>protected</th><th>forced</th><th>policies</th><th>tenant index</th><th>findings</th></tr></thead>
<tbody>
${input.tables.map((t) => mapRow(t, byObject.get(t.object) ?? [])).join('\n')}
</tbody>
</table>
<h2>Findings</h2>
${input.findings.length === 0 ? '<p class="ok">No findings.</p>' : groupFindings(input.findings).map(section).join('\n')}
${others.length > 0 ? `<p class="hint">${others.length} finding(s) concern views, functions, schemas or roles rather than a tenant table.</p>` : ''}
</body>
</html>
`;
}

function mapRow(t: TableStatus, findings: readonly Finding[]): string {
  const status = worst(findings);
  const cell = (ok: boolean, yes: string, no: string, bad: Level = 'error') =>
    `<td class="${ok ? 'ok' : bad}">${ok ? yes : no}</td>`;
  const counts = LEVELS.map((l) => [l, findings.filter((f) => f.level === l).length] as const).filter(([, n]) => n > 0);
  return `<tr class="row ${status}" data-table="${esc(t.object)}">
<th scope="row">${esc(t.object)}</th>
${cell(t.rlsEnabled && t.fenced, 'yes', t.rlsEnabled ? 'RLS on, no verified-tenant policy' : 'no: RLS off')}
${cell(t.rlsForced, 'yes', 'no')}
<td class="${t.policies.length > 0 ? 'plain' : 'warn'}">${t.policies.length > 0 ? t.policies.map((p) => esc(p)).join(', ') : 'none'}</td>
${cell(t.tenantIndex, 'yes', 'no', 'warn')}
<td class="${status}">${counts.length === 0 ? 'none' : counts.map(([l, n]) => `${n} ${LABEL[l]}${n === 1 || l === 'info' ? '' : 's'}`).join(', ')}</td>
</tr>`;
}

function section(group: FindingGroup): string {
  const level = worst(group.findings);
  return `<section class="group ${level}" data-object="${esc(group.object)}"><h3>${esc(group.object)}</h3>
${group.findings.map((f) => `<article class="finding ${f.level}" data-rule="${esc(f.rule)}" data-fingerprint="${esc(f.fingerprint)}">
<h4><span class="level">${LABEL[f.level]}</span> <code>${esc(f.rule)}</code></h4>
<p>${esc(f.detail)}</p>
</article>`).join('\n')}
${group.fixes.map((fix) => `<div class="fix" data-rules="${esc(fix.rules.join(' '))}"><p>fix (${esc(fix.rules.join(', '))})${fix.shownFor !== undefined ? `: the same as for ${esc(fix.shownFor)} above` : ':'}</p>
${fix.shownFor !== undefined ? '' : `<pre class="fix">${esc(fix.remediation, true)}</pre>`}</div>`).join('\n')}
</section>`;
}

function worst(findings: readonly Finding[]): Level | 'ok' {
  return LEVELS.find((l) => findings.some((f) => f.level === l)) ?? 'ok';
}

/** Markup characters as entities, control characters as visible `\xNN` (newlines only in <pre>). */
function esc(text: string, keepNewlines = false): string {
  return visible(text, keepNewlines).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const CSS = `
body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:72rem;padding:0 1rem;color:#1b1f24}
h1 .db{font-weight:400;color:#57606a}
table{border-collapse:collapse;width:100%}
th,td{border:1px solid #d0d7de;padding:.35rem .6rem;text-align:left;vertical-align:top}
thead th{background:#f6f8fa}
.ok{background:#dafbe1}.error{background:#ffebe9}.warn{background:#fff8c5}.info{background:#ddf4ff}.plain{background:#fff}
tr.row th{border-left:6px solid #1a7f37}tr.row.error th{border-left-color:#cf222e}
tr.row.warn th{border-left-color:#9a6700}tr.row.info th{border-left-color:#0969da}
.summary{padding:.6rem .8rem;border-radius:6px;font-weight:600}
.note,.hint,.meta{color:#57606a}
section{margin:1rem 0;padding:.2rem 1rem;border-radius:6px}
article{border-top:1px solid #d0d7de;padding:.3rem 0}
pre.fix{background:#f6f8fa;border:1px solid #d0d7de;padding:.6rem;overflow-x:auto;white-space:pre-wrap}
`;
