/**
 * What the agent may query (`GET /v1/schema`, MCP `list_tables` / `describe_table`): the relations
 * the firewall allows (protected or exposed by the operator), with the columns the agent role's
 * own privileges reach (has_column_privilege as the connected role), so the list never offers a
 * table the gateway would then refuse.
 */
import type pg from 'pg';
import { relationKey } from './firewall.ts';

export interface SchemaColumn {
  readonly name: string;
  readonly type: string;
  readonly nullable: boolean;
}

export interface SchemaTable {
  readonly schema: string;
  readonly name: string;
  readonly kind: 'table' | 'view' | 'materialized view' | 'foreign table';
  /** RLS is enabled and forced: the gateway shows only the caller's tenant's rows. */
  readonly tenantScoped: boolean;
  /** Statements the agent role may run on it (SELECT, and INSERT/UPDATE/DELETE in write mode). */
  readonly privileges: readonly string[];
  readonly columns: readonly SchemaColumn[];
}

export interface SchemaDescription {
  readonly note: string;
  readonly tables: readonly SchemaTable[];
}

const KIND: Record<string, SchemaTable['kind']> = { r: 'table', p: 'table', v: 'view', m: 'materialized view', f: 'foreign table' };

const QUERY = `SELECT n.nspname AS schema, c.relname AS name, c.relkind::text AS kind,
       c.relrowsecurity AND c.relforcerowsecurity AS scoped,
       ARRAY(SELECT p FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']) AS p
              WHERE has_table_privilege(c.oid, p) AND (p = 'SELECT' OR $1)) AS privileges,
       json_agg(json_build_object('name', a.attname, 'type', format_type(a.atttypid, a.atttypmod), 'nullable', NOT a.attnotnull)
                ORDER BY a.attnum) AS columns
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
   AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'tenantfence') AND n.nspname NOT LIKE 'pg\\_%'
   AND has_schema_privilege(n.oid, 'USAGE')
   AND has_column_privilege(c.oid, a.attnum, 'SELECT')
 GROUP BY n.nspname, c.relname, c.relkind, c.relrowsecurity, c.relforcerowsecurity, c.oid
 ORDER BY n.nspname, c.relname`;

export const SCHEMA_NOTE =
  'Tenant filtering is automatic: every statement runs in the caller\'s tenant context and row-level security shows and changes only that tenant\'s rows. Do not filter by tenant yourself and do not try to switch tenants. Send one statement per request; bind values as $1, $2, ... with "params".';

/** `allowed`: the relations the firewall lets the agent name (`FirewallRelations.allowed`); no other is listed. */
export async function describeSchema(pool: Pick<pg.Pool, 'query'>, write: boolean, allowed: ReadonlySet<string>): Promise<SchemaDescription> {
  const { rows } = await pool.query<{ schema: string; name: string; kind: string; scoped: boolean; privileges: string[]; columns: SchemaColumn[] }>({
    text: QUERY,
    values: [write],
    queryMode: 'extended',
  } as pg.QueryConfig);
  return {
    note: SCHEMA_NOTE,
    tables: rows.filter((r) => allowed.has(relationKey(r.schema, r.name))).map((r) => ({
      schema: r.schema,
      name: r.name,
      kind: KIND[r.kind] ?? 'table',
      tenantScoped: r.scoped,
      privileges: r.privileges,
      columns: r.columns,
    })),
  };
}
