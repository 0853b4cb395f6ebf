/**
 * The checks the walk (firewall-walk.ts) makes on the nodes that carry names: relations,
 * columns and field selections, functions, operators, types, TABLESAMPLE (always refused), and node types
 * newer than the server. Each throws a `Refusal` whose message names the fix.
 */
import { REFUSED_SCHEMAS, REFUSED_TYPES, SYSTEM_COLUMNS } from './allowlist.ts';
import { relationKey, type FirewallReason, type FirewallRelations } from './firewall.ts';
import { NODE_SINCE, refusedLabel } from './firewall-nodes.ts';
import type { WalkSettings } from './firewall-walk.ts';

type Json = { readonly [key: string]: unknown };

/** A refusal, thrown inside the walk and turned into a verdict by checkSql. */
export class Refusal {
  constructor(
    readonly reason: FirewallReason,
    readonly message: string,
  ) {}
}

/** System schemas (Postgres reserves the `pg_` prefix) and the ones listed in the allowlist file. */
export function isRefusedSchema(schema: string): boolean {
  return schema.startsWith('pg_') || REFUSED_SCHEMAS.includes(schema);
}

const LOOK_ELSEWHERE = 'use the list_tables and describe_table tools for schema questions; tenant filtering is automatic';

/**
 * Postgres looks an unqualified name up in the enclosing WITH clauses first, then in the
 * implicit pg_catalog, then in the search path; a qualified name never matches a CTE. With the
 * gateway's relation list, the name must then be one the agent may read: an allowlist, so an
 * extension's view outside pg_catalog (`public.pg_stat_statements`) is refused like the catalogs.
 */
export function checkRelation(body: Json, ctes: readonly string[], relations: FirewallRelations | undefined): void {
  const { relname: name, schemaname: schema, catalogname: catalog } = body;
  if (typeof name !== 'string') unsupported('a table reference');
  let key: string | undefined;
  if (schema !== undefined || catalog !== undefined) {
    if (typeof schema !== 'string' || isRefusedSchema(schema)) {
      throw new Refusal('relation', `${String(schema)}.${name} is refused: system catalogs, statistics and the tenantfence schema are off limits; ${LOOK_ELSEWHERE}.`);
    }
    key = relationKey(schema, name);
  } else {
    if (ctes.includes(name)) return;
    if (name.startsWith('pg_')) {
      throw new Refusal('relation', `${name} is refused: an unqualified pg_ name means the system catalog, which is off limits (schema-qualify your own table); ${LOOK_ELSEWHERE}.`);
    }
    key = relations?.resolve.get(name);
  }
  if (relations && (key === undefined || !relations.allowed.has(key))) {
    const shown = typeof schema === 'string' ? `${schema}.${name}` : name;
    throw new Refusal('relation', `${shown} is not a table this agent may query: only tenant-protected tables and those the operator exposes are; ${LOOK_ELSEWHERE}.`);
  }
}

/**
 * Write mode: no explicit value for a column a sequence fills (serial, identity). A chosen key is
 * a squatting tool: tenant A can take the ids tenant B's next inserts would get (B's inserts then
 * fail on a global unique key), and a failure tells A which ids exist. INSERT must name its
 * columns when the table has such a column; UPDATE and ON CONFLICT DO UPDATE may not set one.
 */
export function checkSequenceColumns(type: string, body: Json, relations: FirewallRelations | undefined): void {
  if (!relations) return;
  const target = body.relation as Json | undefined;
  const name = target?.relname;
  if (typeof name !== 'string') return;
  const key = typeof target!.schemaname === 'string' ? relationKey(target!.schemaname, name) : relations.resolve.get(name);
  const columns = key === undefined ? undefined : relations.sequenceColumns.get(key);
  if (!columns || columns.size === 0) return;
  const refuse = (column: string) =>
    new Refusal('other', `The column ${column} of ${name} is filled from a sequence, so it takes no explicit value: leave it out and let the database number the row.`);
  const named = (list: unknown): string[] =>
    (Array.isArray(list) ? list : []).map((item) => ((item as Json).ResTarget as Json | undefined)?.name).filter((n): n is string => typeof n === 'string');
  if (type === 'InsertStmt') {
    const cols = named(body.cols);
    if (cols.length === 0 && body.selectStmt !== undefined) {
      throw new Refusal('other', `INSERT into ${name} must list its columns (the table has a sequence-filled key, which takes no explicit value): write INSERT INTO ${name} (col, ...) VALUES (...).`);
    }
    for (const c of cols) if (columns.has(c)) throw refuse(c);
    const conflict = body.onConflictClause as Json | undefined;
    for (const c of named(conflict?.targetList)) if (columns.has(c)) throw refuse(c);
  } else if (type === 'UpdateStmt') {
    for (const c of named(body.targetList)) if (columns.has(c)) throw refuse(c);
  }
}

/** `t.xmin`: the last name of a column reference is the column (earlier ones name the table). */
export function checkColumn(fields: unknown): void {
  if (!Array.isArray(fields) || fields.length === 0) unsupported('a column reference');
  systemColumn(((fields[fields.length - 1] as Json).String as Json | undefined)?.sval);
}

/** `(t).xmin`, `(t.*).ctid`: a field selected from a whole-row value is a column too. */
export function checkFieldSelection(indirection: unknown): void {
  for (const item of Array.isArray(indirection) ? indirection : []) systemColumn(((item as Json).String as Json | undefined)?.sval);
}

export function checkFunction(funcname: unknown, settings: WalkSettings): void {
  const parts = names(funcname, 'a function call');
  const name = parts.length === 1 ? parts[0]! : parts.length === 2 && parts[0] === 'pg_catalog' ? parts[1]! : undefined;
  if (name === undefined) {
    throw new Refusal('function', `${parts.join('.')}() is refused: schema-qualified functions are not allowed; remove it, tenant filtering is automatic.`);
  }
  systemColumn(name); // `xmin(t)` is Postgres's functional notation for `t.xmin`
  if (!settings.functions.has(name)) {
    if (settings.allowed.has(name)) {
      throw new Refusal('function', `${name}() is not available on this database (PostgreSQL ${serverRelease(settings.serverVersion)} has no pg_catalog.${name}, or another schema on the search path defines the same name): rewrite the query without it.`);
    }
    throw new Refusal('function', `Functions outside the allowlist are refused: remove ${name}() (common string, math, date/time, aggregate, window, JSON, array and text-search functions are allowed); tenant filtering is automatic.`);
  }
}

/**
 * SQL/JSON syntax newer than the server: an older server reads `json_scalar(x)` or
 * `json_arrayagg(x)` as a call of whatever function the search path finds (server-profile.ts).
 */
export function checkNodeVersion(type: string, settings: WalkSettings): void {
  const version = NODE_SINCE.get(type);
  if (version !== undefined && settings.serverVersion < version) {
    throw new Refusal('other', `${refusedLabel(type)} needs PostgreSQL ${version / 10000}, and this database runs ${serverRelease(settings.serverVersion)}: use the json/jsonb functions and operators instead.`);
  }
}

/** `OPERATOR(schema.op)` outside pg_catalog could name any function; plain operators are fine. */
export function checkOperator(list: unknown): void {
  if (list === undefined) return;
  const parts = names(list, 'an operator');
  if (parts.length > 2 || (parts.length === 2 && parts[0] !== 'pg_catalog')) {
    throw new Refusal('function', `OPERATOR(${parts.join('.')}) is refused: write the operator without a schema.`);
  }
}

/**
 * Types: none from a refused schema; none of the catalogs' row types (their columns are xids and
 * oids: `('(…)'::pg_class).relfrozenxid` is an xid, and `age()` of it reads the transaction
 * counter), which Postgres finds by an unqualified `pg_` name as it finds the catalogs; none of
 * the transaction-id and catalog-lookup types; and, with the gateway's relation list, no type
 * built on one of those (a composite, domain, array or range over xid, in any schema).
 */
export function checkTypeName(list: unknown, relations: FirewallRelations | undefined): void {
  const parts = names(list, 'a type name');
  const schema = parts.length > 1 ? parts[parts.length - 2]! : undefined;
  if (schema !== undefined && schema !== 'pg_catalog' && isRefusedSchema(schema)) {
    throw new Refusal('other', `Types from schema ${schema} are refused: use built-in types or your own tables' types.`);
  }
  const last = parts[parts.length - 1]!;
  if ((schema === undefined || schema === 'pg_catalog') && (last.startsWith('pg_') || last.startsWith('_pg_'))) {
    throw new Refusal('other', `The type ${last} is refused: catalog row types carry transaction ids and object ids; use built-in types or your own tables' types.`);
  }
  if (relations && (schema === undefined ? relations.refusedTypes.has(last) : relations.refusedTypes.has(relationKey(schema, last)))) {
    throw new Refusal('other', `The type ${last} is refused because it is built on a transaction-id or catalog type: cast to text, numeric or your own types instead.`);
  }
  const type = parts[parts.length - 1]!;
  if ((schema === undefined || schema === 'pg_catalog') && REFUSED_TYPES.has(type)) {
    throw new Refusal('other', `The type ${type} is refused because transaction ids, tuple ids and catalog lookups reveal other tenants' activity or the catalogs: cast to text, numeric or your own types instead.`);
  }
}

/**
 * TABLESAMPLE is refused whatever the method: which blocks SYSTEM (and which rows BERNOULLI) keeps
 * depends only on the block number and the seed, not on the rows RLS hides, so sampling the
 * tenant's own rows under chosen seeds (REPEATABLE) recovers each row's block, the same leak as
 * `ctid`: how much of other tenants' data lies between them. Confirmed by a red-team run.
 */
export function checkSampleMethod(list: unknown): void {
  const parts = names(list, 'TABLESAMPLE');
  throw new Refusal(
    'other',
    `TABLESAMPLE ${parts.join('.').toUpperCase()} is refused because the sample reveals where rows lie in the table: use ORDER BY random() LIMIT n instead.`,
  );
}

function serverRelease(version: number): string {
  return `${Math.floor(version / 10000)}`;
}

function systemColumn(name: unknown): void {
  if (typeof name === 'string' && SYSTEM_COLUMNS.has(name)) {
    throw new Refusal('other', `The system column ${name} is refused because system columns number rows and transactions across every tenant: select your table's own columns.`);
  }
}

/** The string parts of a name list (`[{String: {sval}}]`); anything else is refused. */
export function names(list: unknown, what: string): string[] {
  if (!Array.isArray(list) || list.length === 0) unsupported(what);
  return list.map((item) => {
    const sval = ((item as Json | undefined)?.String as Json | undefined)?.sval;
    if (sval !== undefined && typeof sval !== 'string') unsupported(what);
    return sval ?? '';
  });
}

export function unsupported(where: string): never {
  throw new Refusal('other', `The firewall does not recognise the shape of ${where}: rewrite the statement in plainer SQL.`);
}

