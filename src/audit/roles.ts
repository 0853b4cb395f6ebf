/**
 * The audit's role rules as `tenantfence init` enforces them (issue 9 item 4, issue 11 item 3):
 * init refuses exactly what the audit reports as an error about its app and agent roles, from the
 * same rule files (front matter `scope: role`), so the two cannot drift. Run inside init's own
 * transaction after its plan, so what is judged is what init would commit: the agent's attributes
 * init corrects do not count, the app role's (which init leaves alone) do. `protect` runs them the
 * same way, so it never says "protected" while one of its roles can take a way around the policy.
 */
import { ErrorCodes, TenantfenceError, toTenantfenceError } from '../errors.ts';
import type { Queryable } from '../sql/queryable.ts';
import { SCHEMA, type Roles } from '../sql/roles.ts';
import type { Statement } from '../sql/statement.ts';
import type { Finding } from './finding.ts';
import { loadRules } from './registry.ts';
import { auditInTransaction } from './runner.ts';

/**
 * Tables the roles own count in every schema, not only the ones an audit is pointed at; but
 * tenantfence's own (its owner role is judged by signing-key-exposed, through the key table).
 */
const USER_SCHEMAS = `SELECT coalesce(array_agg(nspname::text ORDER BY nspname), '{}') AS schemas FROM pg_catalog.pg_namespace
  WHERE nspname NOT IN ('pg_catalog', 'information_schema', $1) AND nspname !~ '^pg_(toast|temp_|toast_temp_)'`;

export async function roleErrors(db: Queryable, roles: Roles, tenantColumn = 'tenant_id'): Promise<Finding[]> {
  const { rows } = await db.query<{ schemas: string[] }>(USER_SCHEMAS, [SCHEMA]);
  const rules = loadRules().filter((r) => r.scope === 'role' && r.level === 'error');
  const report = await auditInTransaction(db, { schemas: rows[0]!.schemas, tenantColumn, appRole: roles.app, agentRole: roles.agent, rules });
  return [...report.findings];
}

/**
 * Runs a plan in one transaction, then the role rules on the result: any error they report about
 * the app or agent role rolls everything back and refuses (TF_UNSAFE_ROLE). `end` is COMMIT, or
 * ROLLBACK to rehearse (`init --print`).
 */
export async function applyChecked(
  db: Queryable,
  statements: readonly Statement[],
  roles: Roles,
  options: {
    end: 'COMMIT' | 'ROLLBACK';
    tenantColumn?: string;
    command: string;
    /** Findings the command reports itself instead of refusing (init: hardening PostgreSQL skipped). */
    tolerated?: (db: Queryable) => Promise<(f: Finding) => boolean>;
  },
): Promise<void> {
  await db.query('BEGIN');
  try {
    for (const s of statements) await db.query(s.text, s.values as unknown[] | undefined);
    const tolerated = (await options.tolerated?.(db)) ?? (() => false);
    const problems = (await roleErrors(db, roles, options.tenantColumn)).filter((f) => !tolerated(f));
    if (problems.length > 0) throw unsafeRole(options.command, problems);
    await db.query(options.end);
  } catch (error) {
    await db.query('ROLLBACK').catch(() => undefined);
    throw toTenantfenceError(error);
  }
}

function unsafeRole(command: string, problems: readonly Finding[]): TenantfenceError {
  const first = problems[0]!;
  const others = [...new Set(problems.slice(1).map((p) => p.rule))];
  const more = problems.length > 1 ? ` (${problems.length - 1} more${others.length > 0 ? `, from ${others.join(', ')}` : ''}; \`tenantfence audit\` lists them)` : '';
  const fix = first.remediation ? ` Fix: ${first.remediation.split('\n')[0]}` : '';
  return new TenantfenceError(
    ErrorCodes.UNSAFE_ROLE,
    `${command} refuses these roles, as audit rule ${first.rule} reports: ${first.detail}${fix}${more}`,
  );
}
