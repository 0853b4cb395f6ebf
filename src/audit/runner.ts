/**
 * Runs every rule against a live database and collects findings. The audit is a catalog read:
 * one REPEATABLE READ READ ONLY transaction (every rule sees the same snapshot, nothing can be
 * written), no JIT, search_path pinned to pg_catalog so no user object can stand in for a catalog
 * function, and the options travel as bind parameters $1..$4, never spliced into the SQL.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ErrorCodes, TenantfenceError } from '../errors.ts';
import { toTenantfenceError } from '../sql/apply.ts';
import type { Queryable } from '../sql/queryable.ts';
import { compareFindings, fingerprint, type Finding, type Rule } from './finding.ts';
import { INVENTORY_PATH, PRELUDE_PATH, loadRules } from './registry.ts';
import { SCHEMA } from '../sql/roles.ts';
import { policyTargets, tenantPolicyText, tenantPredicate } from '../sql/policy.ts';

export interface AuditOptions {
  /** Schemas whose tables are audited (views, functions and roles are checked database-wide). */
  readonly schemas: readonly string[];
  readonly tenantColumn: string;
  readonly appRole: string;
  readonly agentRole: string;
  /** Defaults to every rule in `rules/`. */
  readonly rules?: readonly Rule[];
  /** Called after each rule with its run time (the benchmark names the slow ones with it). */
  readonly onRule?: (id: string, milliseconds: number) => void;
}

/** One tenant table in the isolation map. */
export interface TableStatus {
  readonly object: string;
  readonly rlsEnabled: boolean;
  readonly rlsForced: boolean;
  readonly policies: readonly string[];
  readonly tenantIndex: boolean;
  /** A permissive policy pins the tenant column to tenantfence's verified tenant. */
  readonly fenced: boolean;
}

export interface AuditReport {
  readonly rules: readonly Rule[];
  /** Every finding, in deterministic order. */
  readonly findings: readonly Finding[];
  readonly tables: readonly TableStatus[];
  /** Things the reader must know to trust an empty result (a role that does not exist, ...). */
  readonly notes: readonly string[];
  /** The audited server: its version and the database's name. */
  readonly server: { readonly version: string; readonly database: string };
}

interface RuleRow {
  object: string;
  detail: string;
  remediation: string | null;
  key: string | null;
}

let prelude: string | undefined;

/** The prelude's CTEs in front of a query that may use them (RECURSIVE: some of them recurse). */
export function withPrelude(sql: string): string {
  prelude ??= readFileSync(PRELUDE_PATH, 'utf8').trim();
  return `WITH RECURSIVE ${prelude}\n${sql}`;
}

/** A rule runs as a subquery (it may carry its own WITH) that must yield exactly these columns. */
export function ruleQuery(sql: string): string {
  return withPrelude(`SELECT object, detail, remediation, key FROM (\n${sql}\n) AS finding`);
}

/**
 * One connection (a pg.Client, or a client checked out of a pool): the audit sends BEGIN, SET
 * LOCAL, every rule and COMMIT as separate queries, which must share one session. A pool would run
 * each on whichever connection is free, so the audit would lose its snapshot and settings, and the
 * BEGIN would go back to the pool inside an open transaction.
 */
export type AuditConnection = Queryable;

export async function runAudit(db: AuditConnection, options: AuditOptions): Promise<AuditReport> {
  if (isPool(db)) {
    throw new TenantfenceError(ErrorCodes.USAGE, 'runAudit needs one connection, not a pool; pass `await pool.connect()` and release it afterwards.');
  }
  await db.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  try {
    const report = await auditInTransaction(db, options);
    await db.query('COMMIT');
    return report;
  } catch (error) {
    await db.query('ROLLBACK').catch(() => undefined);
    throw toTenantfenceError(error);
  }
}

/**
 * The audit inside a transaction the caller opened: `init` checks the roles it has just set up
 * before it commits (src/audit/roles.ts). Its settings are SET LOCAL: they end with that transaction.
 */
export async function auditInTransaction(db: AuditConnection, options: AuditOptions): Promise<AuditReport> {
  const rules = options.rules ?? loadRules();
  const params = [[...options.schemas], options.tenantColumn, options.appRole, options.agentRole];
  await db.query('SET LOCAL search_path = pg_catalog, pg_temp');
  // The expression analysis makes the planner's row estimates (and costs) huge, which switches
  // JIT compilation on: about a second per rule spent compiling queries over a few catalog rows.
  await db.query('SET LOCAL jit = off');
  // The prelude marks where tenantfence's policy goes in a remediation; the nonce makes the
  // marks unforgeable by names in the database (resolveMarkers).
  const nonce = randomBytes(12).toString('hex');
  await db.query(`SELECT pg_catalog.set_config('tenantfence.audit_nonce', $1, true)`, [nonce]);
  const findings: Finding[] = [];
  for (const rule of rules) {
    const started = performance.now();
    const { rows } = await db.query<RuleRow>(ruleQuery(rule.sql), params).catch((error: unknown) => {
      throw ruleFailed(rule.id, error);
    });
    options.onRule?.(rule.id, performance.now() - started);
    for (const row of rows) {
      findings.push({
        rule: rule.id,
        title: rule.title,
        level: rule.level,
        category: rule.category,
        exposes: rule.exposes,
        object: row.object,
        detail: row.detail,
        remediation: row.remediation,
        fingerprint: fingerprint(rule.id, row.object, row.key ?? ''),
      });
    }
  }
  const resolved = await resolveMarkers(db, findings, nonce, options.tenantColumn);
  const tables = await inventory(db, params);
  const notes = await notesFor(db, options, tables);
  const server = await serverVersion(db);
  return { rules, findings: resolved.sort(compareFindings), tables, notes, server };
}

/**
 * Replaces the prelude's policy and predicate markers with what src/sql/policy.ts renders for the
 * table, so a remediation's policy is exactly the one protect installs.
 */
async function resolveMarkers(db: Queryable, findings: Finding[], nonce: string, tenantColumn: string): Promise<Finding[]> {
  const marker = new RegExp(`\\x01${nonce}:(policy|predicate):(\\d+)\\x01`, 'g');
  const oids = new Set<string>();
  for (const f of findings) for (const text of [f.remediation ?? '', f.detail]) for (const m of text.matchAll(marker)) oids.add(m[2]!);
  if (oids.size === 0) return findings;
  const targets = await policyTargets(db, [...oids], tenantColumn);
  const resolve = (rule: string, text: string) => text.replace(marker, (_m, kind: string, oid: string) => {
    const target = targets.get(oid);
    if (!target) throw new TenantfenceError(ErrorCodes.INTERNAL, `Audit rule ${rule} marked a policy for a table the audit cannot find; report it.`);
    return kind === 'policy' ? tenantPolicyText(target) : tenantPredicate(target.tenantColumn, target.castType);
  });
  return findings.map((f) => ({ ...f, detail: resolve(f.rule, f.detail), remediation: f.remediation && resolve(f.rule, f.remediation) }));
}

async function serverVersion(db: Queryable): Promise<{ version: string; database: string }> {
  const { rows } = await db.query<{ version: string; database: string }>(
    `SELECT pg_catalog.current_setting('server_version') AS version, pg_catalog.current_database()::text AS database`,
  );
  return rows[0]!;
}

async function inventory(db: Queryable, params: unknown[]): Promise<TableStatus[]> {
  const sql = withPrelude(readFileSync(INVENTORY_PATH, 'utf8'));
  const { rows } = await db.query<{
    object: string; rls_enabled: boolean; rls_forced: boolean; policies: string[]; tenant_index: boolean; fenced: boolean;
  }>(sql, params);
  return rows.map((r) => ({
    object: r.object,
    rlsEnabled: r.rls_enabled,
    rlsForced: r.rls_forced,
    policies: r.policies,
    tenantIndex: r.tenant_index,
    fenced: r.fenced,
  }));
}

async function notesFor(db: Queryable, options: AuditOptions, tables: readonly TableStatus[]): Promise<string[]> {
  const notes: string[] = [];
  if (tables.length === 0) {
    notes.push(`No table in schema(s) ${options.schemas.join(', ')} has a column "${options.tenantColumn}"; table rules had nothing to check (see --schema and --tenant-column).`);
  }
  const outside = await tablesOutside(db, options);
  if (outside.length > 0) {
    const shown = outside.slice(0, OUTSIDE_SHOWN).join(', ') + (outside.length > OUTSIDE_SHOWN ? `, and ${outside.length - OUTSIDE_SHOWN} more` : '');
    notes.push(`${outside.length} table(s) outside --schema have a column "${options.tenantColumn}" and were not audited: ${shown} (add their schemas to --schema).`);
  }
  const { rows } = await db.query<{ rolname: string }>('SELECT rolname FROM pg_catalog.pg_roles WHERE rolname = ANY ($1)', [
    [options.appRole, options.agentRole],
  ]);
  for (const [which, name] of [['app', options.appRole], ['agent', options.agentRole]] as const) {
    if (!rows.some((r) => r.rolname === name)) {
      notes.push(`The ${which} role ${name} does not exist; its role and privilege rules were skipped (see --${which}-role).`);
    }
  }
  return notes;
}

/** node-postgres's Pool (and pools shaped like it): connect() plus connection counters. */
function isPool(db: AuditConnection): boolean {
  const candidate = db as { connect?: unknown; totalCount?: unknown; idleCount?: unknown };
  return typeof candidate.connect === 'function' && typeof candidate.totalCount === 'number' && typeof candidate.idleCount === 'number';
}

const OUTSIDE_SHOWN = 20;

/**
 * Tables with the tenant column in schemas the audit was not asked to read: a tenant table left
 * out by --schema (a partition in another schema, say) would otherwise be skipped silently.
 * tenantfence's own schema is left out: init fences its audit_log itself.
 */
async function tablesOutside(db: Queryable, options: AuditOptions): Promise<string[]> {
  const { rows } = await db.query<{ object: string }>(
    `SELECT n.nspname || '.' || c.relname AS object
       FROM pg_catalog.pg_class c
       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attname = $2 AND a.attnum > 0 AND NOT a.attisdropped
      WHERE c.relkind IN ('r', 'p') AND NOT (n.nspname = ANY ($1::text[]))
        AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast', $3)
        AND n.nspname NOT LIKE 'pg\\_temp\\_%' AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%'
      ORDER BY (n.nspname || '.' || c.relname) COLLATE "C"`,
    [[...options.schemas], options.tenantColumn, SCHEMA],
  );
  return rows.map((r) => r.object);
}

/** Connection trouble keeps its code; anything else names the rule, which is what a reader needs. */
function ruleFailed(id: string, error: unknown): TenantfenceError {
  const mapped = toTenantfenceError(error);
  if (mapped.code !== ErrorCodes.DATABASE) return mapped;
  const code = (error as { code?: unknown })?.code;
  return new TenantfenceError(
    ErrorCodes.DATABASE,
    `Audit rule ${id} could not run (${typeof code === 'string' ? code + ': ' : ''}${(error as Error)?.message ?? String(error)}); report it with your PostgreSQL version.`,
    { cause: error },
  );
}
