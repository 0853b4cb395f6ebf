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
import { ident } from '../sql/quote.ts';
import { SCHEMA } from '../sql/roles.ts';

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

export async function loadServerProfile(pool: Pick<pg.Pool, 'query'>): Promise<ServerProfile> {
  const { rows } = await pool.query<{ version: number; schemas: string[]; catalog: string[]; extensions: string[]; shadows: string[] }>({
    text: QUERY,
    values: [],
    queryMode: 'extended',
  } as pg.QueryConfig);
  const row = rows[0]!;
  const shadowed = new Set(row.shadows);
  const own = row.schemas.filter((s) => !isSystemSchema(s));
  return Object.freeze({
    version: row.version,
    functions: new Set([...row.catalog, ...row.extensions].filter((name) => !shadowed.has(name))),
    searchPath: ['pg_catalog', ...own.map(ident), 'pg_temp'].join(', '),
  });
}
