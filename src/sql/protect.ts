/**
 * The SQL of `tenantfence protect <table>`: ENABLE + FORCE ROW LEVEL SECURITY, one policy with
 * USING and WITH CHECK, an index leading with the tenant column, and grants. The plan is built
 * from what the live catalog says about each table, so it refuses early (before any DDL runs)
 * when a table or its tenant column is missing or the table is owned by a fenced role.
 */
import { ident, literal, qualified } from './quote.ts';
import { POLICY_NAME, SCHEMA, type Roles } from './roles.ts';
import { sql, type Statement } from './statement.ts';
import { TenantfenceError, ErrorCodes } from '../errors.ts';
import type { Queryable } from './queryable.ts';

export interface TableInfo {
  readonly schema: string;
  readonly name: string;
  readonly owner: string;
  /** The app or agent role is, or can SET ROLE to, the owner. */
  readonly ownerReachable: boolean;
  /**
   * The tenant column's type without its modifier (`uuid`, `bigint`, `character varying`): a cast
   * to `varchar(8)` would truncate, and tenant `acmecorp-evil` would match tenant `acmecorp`.
   */
  readonly columnType: string;
  readonly hasTenantLeadingIndex: boolean;
  /** Sequences owned by the table's columns (serial / identity). */
  readonly sequences: readonly string[];
  /** Unique keys that leave the tenant column out: existence oracles across tenants. */
  readonly globalUniqueKeys: readonly string[];
}

export interface ProtectOptions {
  readonly tenantColumn: string;
  readonly roles: Roles;
  /** Give the agent role INSERT/UPDATE/DELETE as well as SELECT (the gateway's `--write`). */
  readonly agentWrite?: boolean;
}

export async function inspectTable(
  db: Queryable,
  table: { schema: string; name: string },
  tenantColumn: string,
  roles: Roles,
): Promise<TableInfo> {
  const { rows } = await db.query<{
    owner: string;
    owner_reachable: boolean;
    column_type: string | null;
    leading_index: boolean;
    sequences: string[];
    global_unique: string[];
  }>(
    `SELECT pg_get_userbyid(c.relowner) AS owner,
            pg_has_role($4, c.relowner, 'MEMBER') OR pg_has_role($5, c.relowner, 'MEMBER') AS owner_reachable,
            format_type(a.atttypid, -1) AS column_type,
            EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indkey[0] = a.attnum) AS leading_index,
            ARRAY(SELECT s.relname::text FROM pg_depend d JOIN pg_class s ON s.oid = d.objid
                   WHERE d.refobjid = c.oid AND d.classid = 'pg_class'::regclass AND s.relkind = 'S'
                   ORDER BY s.relname) AS sequences,
            ARRAY(SELECT x.relname::text FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid
                   WHERE i.indrelid = c.oid AND i.indisunique AND NOT (a.attnum = ANY (i.indkey))
                   ORDER BY x.relname) AS global_unique
       FROM pg_class c
       JOIN pg_namespace n ON n.oid = c.relnamespace
       LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = $3 AND NOT a.attisdropped AND a.attnum > 0
      WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')`,
    [table.schema, table.name, tenantColumn, roles.app, roles.agent],
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
    ownerReachable: row.owner_reachable,
    columnType: row.column_type,
    hasTenantLeadingIndex: row.leading_index,
    sequences: row.sequences,
    globalUniqueKeys: row.global_unique,
  };
}

/**
 * The policy predicate. The column stays bare so its index is usable; the verified tenant is cast
 * to the column's own type inside a scalar subquery, which Postgres runs once per statement as an
 * initPlan instead of once per row. `columnType` comes from format_type(), which quotes what needs
 * quoting, so it is pasted as Postgres printed it.
 */
export function tenantPredicate(tenantColumn: string, columnType: string): string {
  return `${ident(tenantColumn)} = (SELECT ${ident(SCHEMA)}.current_tenant()::${columnType})`;
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
    if (t.ownerReachable) {
      throw new TenantfenceError(
        ErrorCodes.UNSAFE_ROLE,
        `Table ${t.schema}.${t.name} is owned by ${t.owner}, which the app or agent role is or can SET ROLE to, and an owner can switch its policies off; ALTER TABLE ... OWNER TO a migration role first.`,
      );
    }
    const rel = qualified(t.schema, t.name);
    const predicate = tenantPredicate(tenantColumn, t.columnType);
    out.push(
      sql(`ALTER TABLE ${rel} ENABLE ROW LEVEL SECURITY`),
      sql(`ALTER TABLE ${rel} FORCE ROW LEVEL SECURITY`),
      sql(`DROP POLICY IF EXISTS ${ident(POLICY_NAME)} ON ${rel}`),
      sql(`CREATE POLICY ${ident(POLICY_NAME)} ON ${rel} AS PERMISSIVE FOR ALL TO PUBLIC
  USING (${predicate})
  WITH CHECK (${predicate})`),
      sql(`COMMENT ON POLICY ${ident(POLICY_NAME)} ON ${rel} IS ${literal('Managed by tenantfence protect: rows of the verified tenant only.')}`),
    );
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

/** Advice `protect` prints but does not apply: changing keys and ids is a data migration. */
export function protectAdvice(tables: readonly TableInfo[], tenantColumn: string): string[] {
  return tables.flatMap((t) => [
    ...t.globalUniqueKeys.map(
      (key) =>
        `${t.schema}.${t.name}: unique index ${key} leaves out ${tenantColumn}, so a duplicate reveals another tenant's value; make it UNIQUE (${tenantColumn}, ...).`,
    ),
    ...t.sequences.map(
      (seq) =>
        `${t.schema}.${t.name}: sequence ${seq} is shared by all tenants, so its values (nextval, pg_sequence_last_value) count everyone's rows; prefer uuid keys or per-tenant numbering.`,
    ),
  ]);
}
