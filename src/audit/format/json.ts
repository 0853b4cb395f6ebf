/**
 * The machine report: a summary first (counts, the database and server audited), the notes, every
 * finding in report order, and each distinct fix once with the findings it removes. No clock in it,
 * so two runs over the same catalog print the same bytes.
 */
import type { Finding } from '../finding.ts';

export const JSON_FORMAT = 'tenantfence-audit/1';

export interface JsonInput {
  readonly findings: readonly Finding[];
  readonly suppressed: number;
  readonly tables: number;
  readonly notes: readonly string[];
  readonly server: { readonly version: string; readonly database: string };
}

export function formatJson(input: JsonInput): string {
  const count = (level: Finding['level']) => input.findings.filter((f) => f.level === level).length;
  const fixes = new Map<string, string[]>();
  for (const f of input.findings) if (f.remediation) fixes.set(f.remediation, [...(fixes.get(f.remediation) ?? []), f.fingerprint]);
  const report = {
    format: JSON_FORMAT,
    summary: {
      errors: count('error'),
      warnings: count('warn'),
      info: count('info'),
      tenantTables: input.tables,
      suppressed: input.suppressed,
      database: input.server.database,
      serverVersion: input.server.version,
    },
    notes: input.notes,
    findings: input.findings,
    fixes: [...fixes].map(([remediation, findings]) => ({ remediation, findings })),
  };
  return `${JSON.stringify(report, null, 2)}\n`;
}
