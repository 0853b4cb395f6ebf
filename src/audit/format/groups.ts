/**
 * How people read a report (issue 9, item 6): grouped by object (table, view, function or role),
 * groups in the order of their worst finding (level, then what it exposes: RLS off first), and one
 * fix block per distinct fix. Several rules often suggest the same SQL (every policy rule on one
 * bad policy replaces it with tenantfence's); printing it once per rule reads like several fixes.
 */
import { LEVELS, type Finding, type Level } from '../finding.ts';

export interface FixBlock {
  readonly remediation: string;
  /** The rules of this group whose finding this fix removes. */
  readonly rules: readonly string[];
  /** The object of an earlier group that showed the same fix, if any. */
  readonly shownFor?: string;
}

export interface FindingGroup {
  readonly object: string;
  /** In report order (compareFindings). */
  readonly findings: readonly Finding[];
  readonly fixes: readonly FixBlock[];
}

/** `findings` must already be in report order (runAudit returns them so). */
export function groupFindings(findings: readonly Finding[]): FindingGroup[] {
  const byObject = new Map<string, Finding[]>();
  for (const f of findings) byObject.set(f.object, [...(byObject.get(f.object) ?? []), f]);
  const shown = new Map<string, string>();
  return [...byObject].map(([object, group]) => {
    const fixes = new Map<string, string[]>();
    for (const f of group) if (f.remediation) fixes.set(f.remediation, [...(fixes.get(f.remediation) ?? []), f.rule]);
    const blocks = [...fixes].map(([remediation, rules]) => {
      const earlier = shown.get(remediation);
      return { remediation, rules: [...new Set(rules)], ...(earlier !== undefined && earlier !== object ? { shownFor: earlier } : {}) };
    });
    for (const b of blocks) if (!shown.has(b.remediation)) shown.set(b.remediation, object);
    return { object, findings: group, fixes: blocks };
  });
}

export function countByLevel(findings: readonly Finding[]): Array<readonly [Level, number]> {
  return LEVELS.map((l) => [l, findings.filter((f) => f.level === l).length] as const).filter(([, n]) => n > 0);
}
