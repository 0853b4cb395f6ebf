/**
 * The report for people: one block per object (table, view, function, role), worst first, each
 * finding with its level and rule, then each distinct fix once; a summary line last. Colour only
 * on a TTY, and never from the database: its text goes through visible() (no raw control characters).
 */
import type { Finding, Level } from '../finding.ts';
import { countByLevel, groupFindings } from './groups.ts';
import { visible } from './visible.ts';

const COLOUR: Record<Level, string> = { error: '31', warn: '33', info: '36' };
const WORD: Record<Level, [string, string]> = { error: ['error', 'errors'], warn: ['warning', 'warnings'], info: ['info', 'info'] };

export interface TextSummary {
  readonly findings: readonly Finding[];
  readonly suppressed: number;
  readonly tables: number;
  readonly notes: readonly string[];
}

export function formatText(report: TextSummary, color: boolean): string {
  const paint = (code: string, text: string) => (color ? `\x1b[${code}m${text}\x1b[0m` : text);
  const out: string[] = [];
  for (const note of report.notes) out.push(`${paint('2', 'note:')} ${visible(note)}`, '');
  for (const group of groupFindings(report.findings)) {
    const counts = countByLevel(group.findings).map(([l, n]) => `${n} ${WORD[l][n === 1 ? 0 : 1]}`).join(', ');
    out.push(`${paint('1', visible(group.object))} (${counts})`);
    for (const f of group.findings) {
      out.push(`  ${paint(`1;${COLOUR[f.level]}`, f.level.padEnd(5))} ${paint(COLOUR[f.level], f.rule)}`);
      out.push(`        ${visible(f.detail)}`);
    }
    for (const fix of group.fixes) {
      const label = `fix (${fix.rules.join(', ')})`;
      if (fix.shownFor !== undefined) {
        out.push(`  ${paint('2', `${label}: the same as for ${visible(fix.shownFor)} above`)}`);
        continue;
      }
      out.push(`  ${paint('2', `${label}:`)}`, ...visible(fix.remediation, true).split('\n').map((line) => `        ${line}`));
    }
    out.push('');
  }
  out.push(summaryLine(report));
  return `${out.join('\n')}\n`;
}

export function summaryLine(report: TextSummary): string {
  const n = (level: Level) => report.findings.filter((f) => f.level === level).length;
  const plural = (count: number, word: string) => `${count} ${word}${count === 1 ? '' : 's'}`;
  return `${plural(n('error'), 'error')}, ${plural(n('warn'), 'warning')}, ${n('info')} info on ${plural(report.tables, 'tenant table')}` +
    (report.suppressed > 0 ? ` (${report.suppressed} suppressed by the baseline)` : '') + '.';
}
