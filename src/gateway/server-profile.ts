/**
 * What the gateway learns about the database once, at start, as the agent role: the server
 * version, which allowlisted function names really are pg_catalog's there, and the search_path the
 * agent's transactions run with.
 *
 * Why: the firewall parses with PostgreSQL 18's grammar, and an unqualified function name is
 * resolved by the server through its search_path.
 * - On an older server, SQL/JSON syntax the parser turns into its own nodes (`json_scalar(x)`,
 *   `json_arrayagg(x)`, `json(x)`) is a plain function call, looked up on the search path; and a
 *   name the allowlist knows from a newer release (`any_value`, `uuidv7`) is missing from
 *   pg_catalog, so the call runs whatever function of that name another schema holds. The
 *   firewall takes the version (to refuse node types the server lacks) and the pg_catalog names
 *   (to allow only names that exist there).
 * - Postgres picks among ALL functions of a name on the search path by argument types, so a
 *   `public.lower(varchar)` beats `pg_catalog.lower(text)` for a varchar argument whatever the
 *   order. A name that some schema on the path also defines outside an extension is therefore
 *   taken out of the allowlist. Extension members (citext's `replace(citext, ...)`, pg_trgm's
 *   `similarity`) were installed by a privileged role and are trusted like pg_catalog: their
 *   names count as present (so `allowFunctions: ['similarity']` works) and shadow nothing.
 * - The search_path is pinned per transaction: pg_catalog first (a role or database setting could
 *   otherwise put another schema before it, and exact ties go to the earlier schema), then the
 *   agent's own schemas, then pg_temp (which would otherwise be searched first for relations),
 *   never `tenantfence` or another system schema.
 * Functions, schemas and settings changed after start are not seen until a restart.
 */
import type pg from 'pg';
import { TenantfenceError, ErrorCodes } from '../errors.ts';
import { ident, parseTableName } from '../sql/quote.ts';
import { POLICY_NAME, SCHEMA } from '../sql/roles.ts';
import { REFUSED_TYPES } from './allowlist.ts';
import { relationKey, type FirewallRelations } from './firewall.ts';

export interface ServerProfile {
  /** `server_version_num`, e.g. 150020 for 15.20. */
  readonly version: number;
  /**
   * Function names the firewall may allow here: in pg_catalog or an extension on the path, and
   * defined by nothing else on the path.
   */
  readonly functions: ReadonlySet<string>;
  /** The value the executor gives search_path in every transaction. */
  readonly searchPath: string;
  /** Every table, view and foreign table outside the system schemas, and whether tenantfence protects it. */
  readonly relations: readonly ProfileRelation[];
  /** What an unqualified relation name means under the pinned search_path (`relationKey`), any relkind. */
  readonly resolve: ReadonlyMap<string, string>;
  /** Type names (unqualified as the path resolves them, and `relationKey`s) that reach xid or a catalog row type. */
  readonly refusedTypes: ReadonlySet<string>;
}

export interface ProfileRelation {
  readonly schema: string;
  readonly name: string;
  /** RLS enabled and forced, with the policy `tenantfence protect` installs. */
  readonly protected: boolean;
  /** Columns whose default draws from a sequence (serial) or that are identity columns. */
  readonly sequenceColumns: readonly string[];
}

const QUERY = `WITH path AS (
  SELECT p.proname::text AS name,
         EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_catalog.pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e') AS extension
    FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
   WHERE n.nspname = ANY (current_schemas(false)) AND n.nspname <> 'pg_catalog')
SELECT current_setting('server_version_num')::int AS version,
       current_schemas(false)::text[] AS schemas,
       ARRAY(SELECT DISTINCT p.proname::text FROM pg_catalog.pg_proc p
              WHERE p.pronamespace = 'pg_catalog'::regnamespace) AS catalog,
       ARRAY(SELECT DISTINCT name FROM path WHERE extension) AS extensions,
       ARRAY(SELECT DISTINCT name FROM path WHERE NOT extension) AS shadows`;

/** Schemas that never go on the agent's search path. */
function isSystemSchema(name: string): boolean {
  return name.startsWith('pg_') || name === 'information_schema' || name === SCHEMA;
}

/**
 * Relations outside the system schemas; the first holder of each name on the path (pg_catalog
 * first, as the pinned search_path has it); and the types that reach a refused one. A catalog's
 * row type carries xid columns (`('(…)'::pg_class).relfrozenxid` is an xid), and so does any type
 * built on one: arrays (typelem), domains (typbasetype), ranges (rngsubtype), composites (their
 * attributes), to any depth.
 */
const RELATIONS = `WITH path AS (SELECT s, i FROM unnest($1::text[]) WITH ORDINALITY AS p(s, i))
SELECT n.nspname AS schema, c.relname AS name,
       c.relrowsecurity AND c.relforcerowsecurity
         AND EXISTS (SELECT 1 FROM pg_catalog.pg_policy p WHERE p.polrelid = c.oid AND p.polname = $2) AS protected,
       ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a
              WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                AND (a.attidentity <> '' OR EXISTS (SELECT 1 FROM pg_catalog.pg_attrdef d
                      WHERE d.adrelid = c.oid AND d.adnum = a.attnum AND position('nextval(' IN pg_catalog.pg_get_expr(d.adbin, d.adrelid)) > 0))
              ORDER BY a.attnum) AS sequence_columns
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
   AND left(n.nspname, 3) <> 'pg_' AND n.nspname NOT IN ('information_schema', $3)
 ORDER BY 1, 2`;

const RESOLVE = `WITH path AS (SELECT s, i FROM unnest($1::text[]) WITH ORDINALITY AS p(s, i))
SELECT DISTINCT ON (c.relname) c.relname AS name, n.nspname AS schema
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace JOIN path ON path.s = n.nspname
 ORDER BY c.relname, path.i`;

const TYPES = `WITH RECURSIVE edges(parent, child) AS (
    SELECT oid, typelem FROM pg_catalog.pg_type WHERE typelem <> 0
    UNION ALL SELECT oid, typbasetype FROM pg_catalog.pg_type WHERE typbasetype <> 0
    UNION ALL SELECT rngtypid, rngsubtype FROM pg_catalog.pg_range
    UNION ALL SELECT t.oid, a.atttypid FROM pg_catalog.pg_type t
                JOIN pg_catalog.pg_attribute a ON a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped
               WHERE t.typrelid <> 0),
  bad(oid) AS (
    SELECT t.oid FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
     WHERE (n.nspname = 'pg_catalog' AND t.typname = ANY ($2::text[]))
        OR (t.typrelid <> 0 AND (left(n.nspname, 3) = 'pg_' OR n.nspname IN ('information_schema', $3)))
    UNION
    SELECT e.parent FROM edges e JOIN bad ON e.child = bad.oid),
  path AS (SELECT s, i FROM unnest($1::text[]) WITH ORDINALITY AS p(s, i))
SELECT n.nspname AS schema, t.typname AS name,
       NOT EXISTS (SELECT 1 FROM pg_catalog.pg_type o JOIN pg_catalog.pg_namespace m ON m.oid = o.typnamespace
                     JOIN path po ON po.s = m.nspname JOIN path pt ON pt.s = n.nspname
                    WHERE o.typname = t.typname AND po.i < pt.i)
         AND EXISTS (SELECT 1 FROM path WHERE path.s = n.nspname) AS first_on_path
  FROM bad JOIN pg_catalog.pg_type t ON t.oid = bad.oid JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
 WHERE left(n.nspname, 3) <> 'pg_' AND n.nspname NOT IN ('information_schema', $3)`;

export async function loadServerProfile(pool: Pick<pg.Pool, 'query'>): Promise<ServerProfile> {
  const query = <T extends pg.QueryResultRow>(text: string, values: unknown[]) =>
    pool.query<T>({ text, values, queryMode: 'extended' } as pg.QueryConfig);
  const { rows } = await query<{ version: number; schemas: string[]; catalog: string[]; extensions: string[]; shadows: string[] }>(QUERY, []);
  const row = rows[0]!;
  const shadowed = new Set(row.shadows);
  const own = row.schemas.filter((s) => !isSystemSchema(s));
  const path = ['pg_catalog', ...own];
  const [relations, resolve, types] = await Promise.all([
    query<{ schema: string; name: string; protected: boolean; sequence_columns: string[] }>(RELATIONS, [path, POLICY_NAME, SCHEMA]),
    query<{ schema: string; name: string }>(RESOLVE, [path]),
    query<{ schema: string; name: string; first_on_path: boolean }>(TYPES, [path, [...REFUSED_TYPES], SCHEMA]),
  ]);
  return Object.freeze({
    version: row.version,
    functions: new Set([...row.catalog, ...row.extensions].filter((name) => !shadowed.has(name))),
    searchPath: [...path.map((s) => (s === 'pg_catalog' ? s : ident(s))), 'pg_temp'].join(', '),
    relations: relations.rows.map((r) => Object.freeze({ schema: r.schema, name: r.name, protected: r.protected, sequenceColumns: r.sequence_columns })),
    resolve: new Map(resolve.rows.map((r) => [r.name, relationKey(r.schema, r.name)])),
    refusedTypes: new Set(types.rows.flatMap((t) => [relationKey(t.schema, t.name), ...(t.first_on_path ? [t.name] : [])])),
  });
}

/**
 * What the agent may name (issue 10, item 2): the relations tenantfence protects, plus the ones
 * the operator exposes by name (`exposeRelations`, `--expose`: reference tables without tenant
 * rows, for example). Everything else is refused, whatever schema it sits in: an extension's view
 * in `public` (`pg_stat_statements`) or a table someone forgot to protect.
 */
export function firewallRelations(profile: ServerProfile, exposed: readonly string[] = []): FirewallRelations {
  const known = new Map(profile.relations.map((r) => [relationKey(r.schema, r.name), r]));
  const allowed = new Set(profile.relations.filter((r) => r.protected).map((r) => relationKey(r.schema, r.name)));
  for (const input of exposed) {
    const wanted = parseTableName(input);
    const key = input.includes('.') ? relationKey(wanted.schema, wanted.name) : profile.resolve.get(wanted.name);
    if (key === undefined || !known.has(key)) {
      throw new TenantfenceError(ErrorCodes.USAGE, `Cannot expose ${JSON.stringify(input.slice(0, 100))}: no such table or view outside the system schemas; name it as schema.table.`);
    }
    allowed.add(key);
  }
  const sequenceColumns = new Map(profile.relations.filter((r) => r.sequenceColumns.length > 0).map((r) => [relationKey(r.schema, r.name), new Set(r.sequenceColumns)]));
  return Object.freeze({ allowed, resolve: profile.resolve, sequenceColumns, refusedTypes: profile.refusedTypes });
}
