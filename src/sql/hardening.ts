/**
 * Hardening that `init` asks for but PostgreSQL may silently skip. A REVOKE by a role that does
 * not own the object only warns ("no privileges could be revoked"), which is the normal case on
 * managed PostgreSQL when schema public or the database belongs to the provider's superuser or
 * (clusters upgraded from 14 and earlier) keeps its old grants. init reads the result back and
 * reports each gap with the statement its owner must run.
 */
import type { Queryable } from './queryable.ts';

export async function unappliedHardening(db: Queryable): Promise<string[]> {
  const { rows } = await db.query<{ gap: string }>(
    `SELECT format('PUBLIC can still create objects in schema public (a table or function there can shadow yours for the app and agent roles); its owner %s, or a superuser, must run: REVOKE CREATE ON SCHEMA public FROM PUBLIC;',
                   pg_catalog.pg_get_userbyid(n.nspowner)) AS gap
       FROM pg_catalog.pg_namespace n
      WHERE n.nspname = 'public'
        AND EXISTS (SELECT 1 FROM pg_catalog.aclexplode(coalesce(n.nspacl, pg_catalog.acldefault('n', n.nspowner))) a
                     WHERE a.grantee = 0 AND a.privilege_type = 'CREATE')
     UNION ALL
     SELECT format('PUBLIC can still create temporary objects in database %I (a temporary view can shadow a table); its owner %s, or a superuser, must run: REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC;',
                   d.datname, pg_catalog.pg_get_userbyid(d.datdba), d.datname)
       FROM pg_catalog.pg_database d
      WHERE d.datname = current_database()
        AND EXISTS (SELECT 1 FROM pg_catalog.aclexplode(coalesce(d.datacl, pg_catalog.acldefault('d', d.datdba))) a
                     WHERE a.grantee = 0 AND a.privilege_type = 'TEMPORARY')`,
  );
  return rows.map((r) => r.gap);
}
