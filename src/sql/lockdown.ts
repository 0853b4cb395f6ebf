/**
 * The session lockdown of `tenantfence init` (issue 10): every request of every tenant logs in as
 * the same app role, and PostgreSQL lets a role act on its own other sessions. Whoever can run SQL
 * in one request can therefore, through functions PUBLIC may execute by default:
 *   - terminate or cancel the backend of another request (pg_terminate_backend,
 *     pg_cancel_backend: allowed against any backend of the same role);
 *   - read another request's SQL text, literals included (pg_stat_get_activity, which
 *     pg_stat_activity and the other activity views select from, and pg_stat_get_backend_activity;
 *     pg_stat_statements where installed: it keeps the text of utility statements);
 *   - list, read, overwrite and delete the large objects another request created (they belong to
 *     the role that created them: the shared one).
 * init takes EXECUTE on these from PUBLIC and from both roles, in the current database, and grants
 * the monitoring functions back to the roles PostgreSQL made for monitoring, so admins who signal
 * or watch sessions through pg_signal_backend / pg_read_all_stats (pg_monitor) keep doing so.
 * Large objects go back to no one: an application that uses them grants them to its own role.
 *
 * The functions belong to the bootstrap superuser, so only a superuser can change their
 * privileges: on managed PostgreSQL init skips them (a REVOKE by a non-owner only warns) and
 * `unappliedLockdown` reports the statement a superuser must run. The audit rule
 * `session-functions-exposed` checks the same list (a test keeps the two in step).
 * https://www.postgresql.org/docs/15/functions-admin.html#FUNCTIONS-ADMIN-SIGNAL
 * https://www.postgresql.org/docs/15/lo-interfaces.html#LO-FUNCS
 */
import { literal } from './quote.ts';
import { sql, type Statement } from './statement.ts';
import type { Queryable } from './queryable.ts';
import type { Roles } from './roles.ts';

export type SessionFunctionKind = 'signal' | 'activity' | 'large-object';

/** Functions by name (every overload, every server version), with who gets them back. */
export const SESSION_FUNCTIONS: Readonly<Record<SessionFunctionKind, { names: readonly string[]; grantTo: string | null }>> = {
  signal: { names: ['pg_cancel_backend', 'pg_terminate_backend'], grantTo: 'pg_signal_backend' },
  activity: { names: ['pg_stat_get_activity', 'pg_stat_get_backend_activity', 'pg_stat_statements'], grantTo: 'pg_read_all_stats' },
  'large-object': {
    names: [
      'lo_close', 'lo_creat', 'lo_create', 'lo_export', 'lo_from_bytea', 'lo_get', 'lo_import', 'lo_lseek',
      'lo_lseek64', 'lo_open', 'lo_put', 'lo_tell', 'lo_tell64', 'lo_truncate', 'lo_truncate64', 'lo_unlink',
      'loread', 'lowrite',
    ],
    grantTo: null,
  },
};

/**
 * `(signature, kind, grant_to)` rows for the listed functions present on this server: those in
 * pg_catalog, and pg_stat_statements' in whatever schema its extension lives.
 */
function sessionFunctions(): string {
  const values = Object.entries(SESSION_FUNCTIONS).flatMap(([kind, { names, grantTo }]) =>
    names.map((n) => `(${literal(n)}, ${literal(kind)}, ${grantTo === null ? 'NULL' : literal(grantTo)})`),
  );
  return `SELECT pg_catalog.format('%I.%I(%s)', n.nspname, p.proname, pg_catalog.oidvectortypes(p.proargtypes)) AS signature,
         l.kind, l.grant_to, p.proowner, p.proacl
    FROM pg_catalog.pg_proc p
    JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
    JOIN (VALUES ${values.join(', ')}) AS l(name, kind, grant_to) ON l.name = p.proname
   WHERE n.nspname = 'pg_catalog' OR p.proname = 'pg_stat_statements'`;
}

/**
 * One idempotent statement. It changes only what the connected role may change (a superuser:
 * everything), so on managed PostgreSQL it is a quiet no-op instead of a WARNING per function.
 */
export function planLockdown(roles: Roles): Statement {
  return sql(`DO $tf$
DECLARE
  f record;
BEGIN
  FOR f IN ${sessionFunctions()} LOOP
    CONTINUE WHEN NOT pg_catalog.pg_has_role(current_user, f.proowner, 'USAGE');
    EXECUTE pg_catalog.format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC, %I, %I', f.signature, ${literal(roles.app)}, ${literal(roles.agent)});
    IF f.grant_to IS NOT NULL THEN
      EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO %I', f.signature, f.grant_to);
    END IF;
  END LOOP;
  -- The view would fail anyway (its function is revoked); this says so before the call.
  IF pg_catalog.pg_has_role(current_user, (SELECT relowner FROM pg_catalog.pg_class WHERE oid = 'pg_catalog.pg_stat_activity'::pg_catalog.regclass), 'USAGE') THEN
    REVOKE SELECT ON pg_catalog.pg_stat_activity FROM PUBLIC;
    GRANT SELECT ON pg_catalog.pg_stat_activity TO pg_read_all_stats;
  END IF;
END $tf$`);
}

/**
 * The functions of the list that PUBLIC, the app role or the agent role can still execute after
 * init, as one warning with the statements a superuser must run (empty when none is left).
 */
export async function unappliedLockdown(db: Queryable, roles: Roles): Promise<string[]> {
  const { rows } = await db.query<{ names: string; fix: string }>(
    `WITH f AS (${sessionFunctions()}),
     open AS (
       SELECT f.* FROM f
        WHERE EXISTS (SELECT 1 FROM pg_catalog.aclexplode(COALESCE(f.proacl, pg_catalog.acldefault('f', f.proowner))) a
                       WHERE a.privilege_type = 'EXECUTE'
                         AND (a.grantee = 0 OR a.grantee IN (SELECT oid FROM pg_catalog.pg_roles WHERE rolname IN ($1, $2))))
     )
     SELECT string_agg(DISTINCT split_part(signature, '(', 1), ', ' ORDER BY split_part(signature, '(', 1)) AS names,
            pg_catalog.format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC, %I, %I;', string_agg(signature, ', ' ORDER BY signature), $1, $2)
            || COALESCE((SELECT ' ' || string_agg(pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO %I;', g.fns, g.grant_to), ' ' ORDER BY g.grant_to)
                           FROM (SELECT grant_to, string_agg(signature, ', ' ORDER BY signature) AS fns FROM open WHERE grant_to IS NOT NULL GROUP BY grant_to) g), '') AS fix
       FROM open
     HAVING count(*) > 0`,
    [roles.app, roles.agent],
  );
  return rows.map(
    (r) =>
      `the app and agent roles can still signal other sessions, read their SQL or use large objects (${r.names}): these functions belong to a superuser, who must run: ${r.fix}`,
  );
}
