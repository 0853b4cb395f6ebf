/**
 * The SQL of `tenantfence protect <table>`: ENABLE + FORCE ROW LEVEL SECURITY, one policy with
 * USING and WITH CHECK, an index leading with the tenant column, and grants. The plan is built
 * from what the live catalog says about each table, so it refuses early (before any DDL runs)
 * when a table or its tenant column is missing, or has someone else's permissive policies. Roles
 * that could get around the policy (an owner the app can become, ...) are refused after the plan
 * runs, by the audit's role rules, before COMMIT (src/audit/roles.ts).
 */
import { ident, qualified } from './quote.ts';
import { castTypeSql, tenantDefault, tenantPolicy, type PolicyTarget } from './policy.ts';
import { ADMIN_POLICY, POLICY_NAME, type Roles } from './roles.ts';
import { adminPolicy } from './admin.ts';
import { sql, type Statement } from './statement.ts';
import { TenantfenceError, ErrorCodes } from '../errors.ts';
import type { Queryable } from './queryable.ts';

export interface TableInfo {
  readonly schema: string;
  readonly name: string;
  readonly owner: string;
  /** The type the policy casts the verified tenant to (policy.ts, castTypeSql). */
  readonly castType: string;
  /** Permissive policies other than tenantfence's: each is OR-ed with it and widens it. */
  readonly otherPolicies: readonly OtherPolicy[];
  readonly hasTenantLeadingIndex: boolean;
  /** Sequences owned by the table's columns (serial / identity). */
  readonly sequences: readonly string[];
  /** Unique keys that leave the tenant column out: existence oracles across tenants. */
  readonly globalUniqueKeys: readonly string[];
  /**
   * Foreign keys between this table and another table with the tenant column that leave the tenant
   * column out: a row of one tenant can reference (and so pin, and probe for) another tenant's row.
   */
  readonly tenantlessForeignKeys: readonly string[];
}

export interface OtherPolicy {
  readonly name: string;
  /** `FOR SELECT TO PUBLIC USING (...) WITH CHECK (...)`, as the catalog prints it. */
  readonly shape: string;
}

export interface ProtectOptions {
  readonly tenantColumn: string;
  readonly roles: Roles;
  /** Give the agent role INSERT/UPDATE/DELETE as well as SELECT (the gateway's `--write`). */
  readonly agentWrite?: boolean;
  /** Drop the table's other permissive policies instead of refusing the table. */
  readonly replacePolicies?: boolean;
  /** Make the tenant column's DEFAULT the verified tenant (writes need not name it). */
  readonly defaultTenant?: boolean;
  /** Add the admin policy: members of tenantfence_admin, inside withAdmin, see every tenant. */
  readonly adminAccess?: boolean;
  /** Protect a table even though it has global unique keys or tenant-less foreign keys. */
  readonly allowGlobalKeys?: boolean;
}

export async function inspectTable(
  db: Queryable,
  table: { schema: string; name: string },
  tenantColumn: string,
): Promise<TableInfo> {
  const { rows } = await db.query<{
    owner: string;
    column_type: string | null;
    leading_index: boolean;
    sequences: string[];
    global_unique: string[];
    tenantless_fks: string[];
    other_policies: Array<{ name: string; shape: string }>;
  }>(
    `SELECT pg_get_userbyid(c.relowner) AS owner,
            CASE WHEN a.attnum IS NOT NULL THEN ${castTypeSql('a.atttypid')} END AS column_type,
            EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indkey[0] = a.attnum) AS leading_index,
            ARRAY(SELECT s.relname::text FROM pg_depend d JOIN pg_class s ON s.oid = d.objid
                   WHERE d.refobjid = c.oid AND d.classid = 'pg_class'::regclass AND s.relkind = 'S'
                   ORDER BY s.relname) AS sequences,
            ARRAY(SELECT x.relname::text FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid
                   WHERE i.indrelid = c.oid AND i.indisunique AND NOT (a.attnum = ANY (i.indkey))
                   ORDER BY x.relname) AS global_unique,
            -- Outgoing keys whose columns leave out this table's tenant column, and incoming keys
            -- whose referenced columns do, between tables that both carry the tenant column.
            ARRAY(SELECT k.conname::text FROM pg_constraint k
                   JOIN pg_attribute o ON o.attrelid = CASE WHEN k.conrelid = c.oid THEN k.confrelid ELSE k.conrelid END
                                      AND o.attname = $3 AND NOT o.attisdropped AND o.attnum > 0
                   WHERE k.contype = 'f' AND (k.conrelid = c.oid OR k.confrelid = c.oid)
                     AND NOT (a.attnum = ANY (CASE WHEN k.conrelid = c.oid THEN k.conkey ELSE k.confkey END))
                   ORDER BY k.conname) AS tenantless_fks,
            coalesce((SELECT json_agg(json_build_object('name', p.polname, 'shape', concat_ws(' ',
                        'FOR ' || CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE'
                                                WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,
                        'TO ' || CASE WHEN p.polroles = '{0}' THEN 'PUBLIC'
                                      ELSE (SELECT string_agg(quote_ident(pg_get_userbyid(r)), ', ') FROM unnest(p.polroles) AS r) END,
                        'USING (' || pg_get_expr(p.polqual, p.polrelid) || ')',
                        'WITH CHECK (' || pg_get_expr(p.polwithcheck, p.polrelid) || ')'))
                        ORDER BY p.polname COLLATE "C")
                        FROM pg_policy p WHERE p.polrelid = c.oid AND p.polpermissive AND p.polname <> ALL ($4)), '[]') AS other_policies
       FROM pg_class c
       JOIN pg_namespace n ON n.oid = c.relnamespace
       LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = $3 AND NOT a.attisdropped AND a.attnum > 0
      WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')`,
    // protect's own policies are not someone else's
    [table.schema, table.name, tenantColumn, [POLICY_NAME, ADMIN_POLICY]],
  );
  const row = rows[0];
  const shown = `${table.schema}.${table.name}`;
  if (!row) {
    throw new TenantfenceError(ErrorCodes.NO_TABLE, `Table ${shown} does not exist; create it first or check the name and schema.`);
  }
  if (row.column_type === null) {
    throw new TenantfenceError(
      ErrorCodes.NO_TENANT_COLUMN,
      `Table ${shown} has no column "${tenantColumn}"; add it (NOT NULL) or pass --tenant-column.`,
    );
  }
  return {
    schema: table.schema,
    name: table.name,
    owner: row.owner,
    castType: row.column_type,
    otherPolicies: row.other_policies,
    hasTenantLeadingIndex: row.leading_index,
    sequences: row.sequences,
    globalUniqueKeys: row.global_unique,
    tenantlessForeignKeys: row.tenantless_fks,
  };
}

export function planProtect(tables: readonly TableInfo[], options: ProtectOptions): Statement[] {
  const { roles, tenantColumn } = options;
  const app = ident(roles.app);
  const agent = ident(roles.agent);
  const out: Statement[] = [];
  for (const schema of [...new Set(tables.map((t) => t.schema))].sort()) {
    out.push(sql(`GRANT USAGE ON SCHEMA ${ident(schema)} TO ${app}, ${agent}`));
  }
  for (const t of tables) {
    if (t.otherPolicies.length > 0 && !options.replacePolicies) throw policyConflict(t);
    if ((t.globalUniqueKeys.length > 0 || t.tenantlessForeignKeys.length > 0) && !options.allowGlobalKeys) throw globalKeys(t, tenantColumn);
    const rel = qualified(t.schema, t.name);
    const target: PolicyTarget = { schema: t.schema, name: t.name, tenantColumn, castType: t.castType };
    out.push(
      sql(`ALTER TABLE ${rel} ENABLE ROW LEVEL SECURITY`),
      sql(`ALTER TABLE ${rel} FORCE ROW LEVEL SECURITY`),
      ...t.otherPolicies.map((p) => sql(`DROP POLICY ${ident(p.name)} ON ${rel}`)),
      ...tenantPolicy(target),
    );
    if (options.defaultTenant) out.push(tenantDefault(target));
    if (options.adminAccess) out.push(...adminPolicy(t.schema, t.name));
    if (!t.hasTenantLeadingIndex) {
      const indexName = `${t.name.slice(0, 50)}_${tenantColumn.slice(0, 6)}_idx`;
      out.push(sql(`CREATE INDEX IF NOT EXISTS ${ident(indexName)} ON ${rel} (${ident(tenantColumn)})`));
    }
    out.push(
      sql(`REVOKE ALL ON ${rel} FROM ${app}, ${agent}`),
      sql(`GRANT SELECT, INSERT, UPDATE, DELETE ON ${rel} TO ${app}`),
      sql(`GRANT ${options.agentWrite ? 'SELECT, INSERT, UPDATE, DELETE' : 'SELECT'} ON ${rel} TO ${agent}`),
    );
    for (const seq of t.sequences) {
      const s = qualified(t.schema, seq);
      out.push(sql(`GRANT USAGE ON SEQUENCE ${s} TO ${app}`));
      if (options.agentWrite) out.push(sql(`GRANT USAGE ON SEQUENCE ${s} TO ${agent}`));
    }
  }
  return out;
}

/**
 * Permissive policies are OR-ed: a row any one of them admits is visible (or writable), so a
 * second permissive policy can only widen tenantfence's, and a legacy `current_setting(...) = 'on'`
 * one keeps its bypass working after protect. protect owns the table's permissive policies: it
 * names the others and refuses, or drops them with --replace-policies. Restrictive policies are
 * AND-ed and can only narrow, so they stay.
 */
function policyConflict(t: TableInfo): TenantfenceError {
  const named = t.otherPolicies.map((p) => `${p.name} (${p.shape.replace(/\s+/g, ' ')})`).join('; ');
  return new TenantfenceError(
    ErrorCodes.POLICY_CONFLICT,
    `Table ${t.schema}.${t.name} has other permissive policies, which PostgreSQL ORs with the tenant policy, so each one widens what a tenant reads and writes beyond its own rows: ${named}; rerun with --replace-policies to drop them, or make them AS RESTRICTIVE.`,
  );
}

/**
 * A key that spans tenants is an oracle and a squatting point that RLS cannot close: a unique
 * violation (or a foreign-key failure) tells one tenant that another's value exists, a tenant can
 * register the values another will need, and a row that references another tenant's row stops
 * that row from being deleted. Checks run as the table owner, around the policy.
 */
function globalKeys(t: TableInfo, tenantColumn: string): TenantfenceError {
  const keys = [
    ...t.globalUniqueKeys.map((k) => `unique index ${k}`),
    ...t.tenantlessForeignKeys.map((k) => `foreign key ${k}`),
  ].join(', ');
  return new TenantfenceError(
    ErrorCodes.GLOBAL_KEYS,
    `Table ${t.schema}.${t.name} has keys that span tenants (${keys}): their violations reveal other tenants' values and let one tenant claim or pin another's; include ${tenantColumn} in them (UNIQUE (${tenantColumn}, ...), FOREIGN KEY (${tenantColumn}, ...)), or rerun with --allow-global-keys to accept that.`,
  );
}

/** Advice `protect` prints but does not apply: changing keys and ids is a data migration. */
export function protectAdvice(tables: readonly TableInfo[], tenantColumn: string): string[] {
  return tables.flatMap((t) => [
    ...t.globalUniqueKeys.map(
      (key) =>
        `${t.schema}.${t.name}: unique index ${key} leaves out ${tenantColumn}, so a duplicate reveals another tenant's value; make it UNIQUE (${tenantColumn}, ...).`,
    ),
    ...t.tenantlessForeignKeys.map(
      (key) =>
        `${t.schema}.${t.name}: foreign key ${key} leaves out ${tenantColumn}, so one tenant's row can reference (and pin) another's; make it FOREIGN KEY (${tenantColumn}, ...).`,
    ),
    ...t.sequences.map(
      (seq) =>
        `${t.schema}.${t.name}: sequence ${seq} is shared by all tenants, so its values (nextval, pg_sequence_last_value) count everyone's rows; prefer uuid keys or per-tenant numbering.`,
    ),
  ]);
}
