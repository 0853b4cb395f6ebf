/**
 * The tenant policy, rendered in one place: `tenantfence protect` installs it and every audit
 * remediation that suggests a policy prints it (issue 9, item 4). Two renderers drifted once: the
 * audit cast the verified tenant to the column's full type, so on a `varchar(8)` column tenant
 * `acmecorp-evil` was truncated to `acmecorp` and read its rows.
 */
import { ident, literal, qualified } from './quote.ts';
import { POLICY_NAME, SCHEMA } from './roles.ts';
import { sql, type Statement } from './statement.ts';
import type { Queryable } from './queryable.ts';

/** One table's tenant column, as the policy needs it. */
export interface PolicyTarget {
  readonly schema: string;
  readonly name: string;
  readonly tenantColumn: string;
  /** From {@link CAST_TYPE_SQL}: the column's base type, without a type modifier. */
  readonly castType: string;
}

/**
 * The type the verified tenant is cast to, as SQL over a type OID expression (`a.atttypid`).
 * A domain is followed down to its base type and the modifier is dropped: a cast to `varchar(8)`,
 * `char(8)` or a domain over either truncates, and `acmecorp-evil` would become `acmecorp`. With
 * modifier -1, format_type() prints `bpchar` for `char(n)` (unlimited), where `character` would
 * be `char(1)`. It quotes what needs quoting, so the result is pasted as printed.
 */
export function castTypeSql(typeOid: string): string {
  return `(WITH RECURSIVE chain(oid, base) AS (
     SELECT ty.oid, ty.typbasetype FROM pg_catalog.pg_type ty WHERE ty.oid = ${typeOid}
     UNION ALL
     SELECT ty.oid, ty.typbasetype FROM chain JOIN pg_catalog.pg_type ty ON ty.oid = chain.base)
   SELECT pg_catalog.format_type(chain.oid, -1) FROM chain WHERE chain.base = 0)`;
}

/** The verified tenant in the column's type, per statement; `subquery` makes it an initPlan. */
function verifiedTenant(castType: string, subquery: boolean): string {
  const call = `${ident(SCHEMA)}.current_tenant()::${castType}`;
  return subquery ? `(SELECT ${call})` : call;
}

/**
 * The policy predicate. The column stays bare so its index is usable; the verified tenant is cast
 * to the column's type inside a scalar subquery, which Postgres runs once per statement as an
 * initPlan instead of once per row.
 */
export function tenantPredicate(tenantColumn: string, castType: string): string {
  return `${ident(tenantColumn)} = ${verifiedTenant(castType, true)}`;
}

/**
 * `protect --default-tenant`: the column's DEFAULT is the verified tenant, cast like the policy
 * (a DEFAULT may not hold a subquery). Without a valid context it is NULL, which WITH CHECK
 * refuses, so a write without context still fails.
 */
export function tenantDefault(target: PolicyTarget): Statement {
  return sql(`ALTER TABLE ${qualified(target.schema, target.name)} ALTER COLUMN ${ident(target.tenantColumn)} SET DEFAULT ${verifiedTenant(target.castType, false)}`);
}

/** tenantfence's policy on one table: replaces an earlier one of the same name. */
export function tenantPolicy(target: PolicyTarget): Statement[] {
  const rel = qualified(target.schema, target.name);
  const predicate = tenantPredicate(target.tenantColumn, target.castType);
  return [
    sql(`DROP POLICY IF EXISTS ${ident(POLICY_NAME)} ON ${rel}`),
    sql(`CREATE POLICY ${ident(POLICY_NAME)} ON ${rel} AS PERMISSIVE FOR ALL TO PUBLIC
  USING (${predicate})
  WITH CHECK (${predicate})`),
    sql(`COMMENT ON POLICY ${ident(POLICY_NAME)} ON ${rel} IS ${literal('Managed by tenantfence protect: rows of the verified tenant only.')}`),
  ];
}

/** The policy as remediation text (what `--print` would show for it). */
export function tenantPolicyText(target: PolicyTarget): string {
  return tenantPolicy(target).map((s) => `${s.text};`).join('\n');
}

/**
 * The policy targets of tables by OID (the audit's remediation markers carry one): schema, name
 * and the cast type, computed by the same SQL as `protect`'s. Tables without the column are left out.
 */
export async function policyTargets(db: Queryable, oids: readonly string[], tenantColumn: string): Promise<Map<string, PolicyTarget>> {
  const { rows } = await db.query<{ oid: string; schema: string; name: string; cast_type: string }>(
    `SELECT c.oid::text AS oid, n.nspname::text AS schema, c.relname::text AS name, ${castTypeSql('a.atttypid')} AS cast_type
       FROM pg_catalog.pg_class c
       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attname = $2 AND a.attnum > 0 AND NOT a.attisdropped
      WHERE c.oid = ANY ($1::oid[])`,
    [[...oids], tenantColumn],
  );
  return new Map(rows.map((r) => [r.oid, { schema: r.schema, name: r.name, tenantColumn, castType: r.cast_type }]));
}
