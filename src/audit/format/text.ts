/**
 * The report for people: findings grouped by level, then one summary line. Colour only on a TTY,
 * and never from the database: its text goes through visible() (no raw control characters).
 */
import { LEVELS, type Finding, type Level } from '../finding.ts';
import { visible } from './visible.ts';

const COLOUR: Record<Level, string> = { error: '31', warn: '33', info: '36' };
const HEADING: Record<Level, string> = { error: 'Errors', warn: 'Warnings', info: 'Info' };

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
  for (const level of LEVELS) {
    const group = report.findings.filter((f) => f.level === level);
    if (group.length === 0) continue;
    out.push(paint(`1;${COLOUR[level]}`, `${HEADING[level]} (${group.length})`), '');
    for (const f of group) {
      out.push(`  ${paint(COLOUR[level], f.rule)}  ${paint('1', visible(f.object))}`);
      out.push(`    ${visible(f.detail)}`);
      if (f.remediation) {
        out.push(...visible(f.remediation, true).split('\n').map((line, i) => `    ${i === 0 ? paint('2', 'fix:') : '    '} ${line}`));
      }
      out.push('');
    }
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
