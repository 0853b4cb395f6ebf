/**
 * `tenantfence audit`: run every rule, drop the baseline's findings, render one format, and decide
 * the exit code (0: nothing at or above --fail-on; 1: findings). Usage and connection problems
 * are TenantfenceErrors, which the argv layer turns into exit 2.
 */
import { writeFileSync } from 'node:fs';
import { TenantfenceError, ErrorCodes } from '../../errors.ts';
import { LEVELS, levelRank, type Finding, type Level } from '../../audit/finding.ts';
import { runAudit, type AuditReport } from '../../audit/runner.ts';
import { readBaseline, writeBaseline } from '../../audit/baseline.ts';
import { formatText, summaryLine } from '../../audit/format/text.ts';
import { formatSarif } from '../../audit/format/sarif.ts';
import { formatHtml } from '../../audit/format/html.ts';
import { formatJson } from '../../audit/format/json.ts';
import { visible } from '../../audit/format/visible.ts';
import { DEFAULT_AGENT_ROLE, DEFAULT_APP_ROLE } from '../../sql/roles.ts';
import type { Queryable } from '../../sql/queryable.ts';
import { VERSION } from '../../version.ts';

export const AUDIT_FORMATS = ['text', 'json', 'sarif', 'html'] as const;
export type AuditFormat = (typeof AUDIT_FORMATS)[number];
export const FAIL_ON = [...LEVELS, 'never'] as const;
export type FailOn = (typeof FAIL_ON)[number];

export interface AuditCommandOptions {
  readonly db: Queryable;
  readonly schemas?: readonly string[];
  readonly tenantColumn?: string;
  readonly appRole?: string;
  readonly agentRole?: string;
  readonly format?: AuditFormat;
  /** Write the report here instead of returning it as `stdout`. */
  readonly output?: string;
  readonly failOn?: FailOn;
  /** Suppress the findings recorded in this baseline file. */
  readonly baseline?: string;
  /** Record every current finding here; they count as accepted for this run too. */
  readonly writeBaseline?: string;
  /** ANSI colour in the text format (the CLI passes "stdout is a TTY"). */
  readonly color?: boolean;
  /** Shown in the HTML title (default: the database the audit read). */
  readonly databaseName?: string;
  /** The HTML report's time (default now); the other formats carry no clock. */
  readonly now?: Date;
}

export interface AuditCommandResult {
  readonly exitCode: 0 | 1;
  /** The report when no --output was given, else empty. */
  readonly stdout: string;
  /** Notes and, with --output, the summary line. */
  readonly stderr: string;
  readonly report: AuditReport;
  /** Findings left after the baseline. */
  readonly findings: readonly Finding[];
  readonly suppressed: number;
}

export async function audit(options: AuditCommandOptions): Promise<AuditCommandResult> {
  const format = options.format ?? 'text';
  const failOn = options.failOn ?? 'error';
  if (!AUDIT_FORMATS.includes(format)) throw usage(`--format must be one of ${AUDIT_FORMATS.join(', ')}`);
  if (!FAIL_ON.includes(failOn)) throw usage(`--fail-on must be one of ${FAIL_ON.join(', ')}`);
  const schemas = options.schemas ?? ['public'];
  if (schemas.length === 0 || schemas.some((s) => s.length === 0)) throw usage('--schema needs one or more schema names, comma-separated');
  const tenantColumn = options.tenantColumn ?? 'tenant_id';
  if (tenantColumn.length === 0) throw usage('--tenant-column needs a column name');
  // Read the baseline before the audit runs, so a wrong path fails fast.
  const accepted = options.baseline ? readBaseline(options.baseline) : new Set<string>();

  const report = await runAudit(options.db, {
    schemas,
    tenantColumn,
    appRole: options.appRole ?? DEFAULT_APP_ROLE,
    agentRole: options.agentRole ?? DEFAULT_AGENT_ROLE,
  });
  if (options.writeBaseline) {
    writeBaseline(options.writeBaseline, report.findings);
    for (const f of report.findings) accepted.add(f.fingerprint);
  }
  const findings = report.findings.filter((f) => !accepted.has(f.fingerprint));
  const suppressed = report.findings.length - findings.length;
  const summary = { findings, suppressed, tables: report.tables.length, notes: report.notes };

  const rendered =
    format === 'json' ? formatJson({ ...summary, server: report.server })
    : format === 'sarif' ? formatSarif(report.rules, findings, VERSION)
    : format === 'html' ? formatHtml({
        database: options.databaseName ?? report.server.database,
        findings,
        suppressed,
        tables: report.tables,
        notes: report.notes,
        serverVersion: report.server.version,
        generatedAt: options.now ?? new Date(),
      })
    : formatText(summary, Boolean(options.color) && !options.output);

  let stderr = format === 'text' ? '' : report.notes.map((n) => `note: ${visible(n)}\n`).join('');
  if (options.output) {
    try {
      writeFileSync(options.output, rendered);
    } catch (error) {
      throw new TenantfenceError(ErrorCodes.USAGE, `Cannot write the report to ${options.output}; check the folder exists and is writable.`, { cause: error });
    }
    stderr += `${summaryLine(summary)} Report written to ${options.output}.\n`;
  }
  return { exitCode: fails(findings, failOn) ? 1 : 0, stdout: options.output ? '' : rendered, stderr, report, findings, suppressed };
}

function fails(findings: readonly Finding[], failOn: FailOn): boolean {
  if (failOn === 'never') return false;
  return findings.some((f) => levelRank(f.level) <= levelRank(failOn as Level));
}

function usage(message: string): TenantfenceError {
  return new TenantfenceError(ErrorCodes.USAGE, `${message}; run tenantfence audit --help.`);
}
