/**
 * Letting the connected admin act as a NOLOGIN role that owns objects (tenantfence_owner), which
 * `ALTER ... OWNER TO`, `CREATE SCHEMA ... AUTHORIZATION` and the owner's grants require.
 *
 * On managed PostgreSQL (RDS, Cloud SQL, Azure, Supabase, Neon) the admin is a CREATEROLE database
 * owner, never a superuser, and CREATEROLE alone is not membership:
 * - up to 15, CREATEROLE may grant any non-superuser role, itself included, but is no member
 *   until it does ("must be member of role ...");
 * - from 16 on, the creator of a role holds ADMIN OPTION on it but neither SET nor INHERIT
 *   (unless createrole_self_grant says so), and only a role with ADMIN OPTION may grant it
 *   ("must be able to SET ROLE ..."). A role created by someone else needs that someone, or a
 *   superuser, to run the GRANT the error names.
 * https://www.postgresql.org/docs/16/release-16.html#RELEASE-16-PRIVILEGES
 */
import { literal } from './quote.ts';
import { sql, type Statement } from './statement.ts';

/**
 * Grants `role` to the connected role when it cannot already SET ROLE to it and use its
 * privileges; a no-op for superusers and members. When the grant is not allowed, the error says
 * which statement a superuser or the role's creator must run.
 */
export function actAs(role: string): Statement {
  const r = literal(role);
  return sql(`DO $tf$
DECLARE
  v16 boolean := current_setting('server_version_num')::int >= 160000;
BEGIN
  IF pg_catalog.pg_has_role(current_user, ${r}, 'USAGE')
     AND (NOT v16 OR pg_catalog.pg_has_role(current_user, ${r}, 'SET')) THEN
    RETURN;
  END IF;
  BEGIN
    EXECUTE format('GRANT %I TO %I', ${r}, current_user) || CASE WHEN v16 THEN ' WITH INHERIT TRUE, SET TRUE' ELSE '' END;
  EXCEPTION WHEN insufficient_privilege THEN
    RAISE EXCEPTION 'role % cannot act as role %, which owns tenantfence''s objects, and may not grant itself that role', current_user, ${r}
      USING ERRCODE = '42501',
            HINT = format('a superuser or a role with ADMIN OPTION on %I runs: GRANT %I TO %I', ${r}, ${r}, current_user)
                   || CASE WHEN v16 THEN ' WITH INHERIT TRUE, SET TRUE' ELSE '' END;
  END;
END $tf$`);
}
