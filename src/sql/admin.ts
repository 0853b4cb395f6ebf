/**
 * The audited admin path (issue 9, item 5): support and operations read or fix rows across tenants
 * without a bypass kept in a setting, and without BYPASSRLS, which managed PostgreSQL does not let
 * a database owner grant.
 *
 * - `tenantfence_admin`: a NOLOGIN role that owns nothing and has no attribute. An operator grants
 *   it to a named admin login (never the app or agent role: the audit's role rules refuse that).
 * - `tenantfence.admin_log`: append-only, owner-written. `admin_record(reason)` writes one row
 *   (login, reason, time) and commits it before any admin SQL runs, so a rolled-back admin
 *   transaction is still on record.
 * - `admin_enter(id)` binds that record to the current transaction; `admin_session()` is true only
 *   in a transaction bound to a record of the session's own login, for a member of tenantfence_admin.
 * - `protect --admin-access` adds a second policy, `TO tenantfence_admin`, admitting rows only when
 *   admin_session() is true. The app and agent roles are not members, so it never applies to them.
 */
import { ident, literal, qualified } from './quote.ts';
import { ADMIN_POLICY, ADMIN_ROLE, OWNER_ROLE, SCHEMA } from './roles.ts';
import { sql, type Statement } from './statement.ts';

const S = ident(SCHEMA);
const OWNER = ident(OWNER_ROLE);
const ADMIN = ident(ADMIN_ROLE);
const LOG = qualified(SCHEMA, 'admin_log');
const BOUND = qualified(SCHEMA, 'admin_sessions');

/** Membership through which policies apply (USAGE: inherited privileges) of the session's login. */
const IS_ADMIN = `pg_catalog.pg_has_role(session_user, ${literal(ADMIN_ROLE)}, 'USAGE')`;

export function planAdmin(): Statement[] {
  return [
    // Roles are cluster-wide: an init in another database may create it between our check and our
    // CREATE (its transaction commits while ours waits on the name), which is no error here.
    sql(`DO $tf$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = ${literal(ADMIN_ROLE)}) THEN
    CREATE ROLE ${ADMIN} NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION;
  END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
  NULL;
END $tf$`),
    sql(`CREATE TABLE IF NOT EXISTS ${LOG} (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  at timestamptz NOT NULL DEFAULT clock_timestamp(),
  login text NOT NULL DEFAULT session_user,
  reason text NOT NULL CHECK (length(btrim(reason)) BETWEEN 3 AND 1000)
)`),
    sql(`CREATE TABLE IF NOT EXISTS ${BOUND} (
  log_id uuid NOT NULL REFERENCES ${LOG} (id),
  xact xid8 NOT NULL PRIMARY KEY
)`),
    ...[LOG, BOUND].flatMap((t) => [sql(`ALTER TABLE ${t} OWNER TO ${OWNER}`), sql(`REVOKE ALL ON ${t} FROM PUBLIC`)]),
    sql(`GRANT SELECT ON ${LOG} TO ${ADMIN}`),
    sql(`CREATE OR REPLACE FUNCTION ${S}.admin_record(reason text) RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $tf$
DECLARE
  id uuid;
BEGIN
  IF NOT ${IS_ADMIN} THEN
    RAISE EXCEPTION 'tenantfence: % is not a member of ${ADMIN_ROLE}', session_user USING ERRCODE = '42501';
  END IF;
  INSERT INTO ${LOG} (reason) VALUES (reason) RETURNING ${LOG}.id INTO id;
  RETURN id;
END
$tf$`),
    sql(`CREATE OR REPLACE FUNCTION ${S}.admin_enter(record uuid) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $tf$
BEGIN
  IF NOT ${IS_ADMIN} OR NOT EXISTS (SELECT 1 FROM ${LOG} l WHERE l.id = record AND l.login = session_user) THEN
    RAISE EXCEPTION 'tenantfence: no admin record % for %', record, session_user USING ERRCODE = '42501';
  END IF;
  INSERT INTO ${BOUND} (log_id, xact) VALUES (record, pg_current_xact_id());
END
$tf$`),
    sql(`CREATE OR REPLACE FUNCTION ${S}.admin_session() RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $tf$
  SELECT ${IS_ADMIN} AND EXISTS (
    SELECT 1 FROM ${BOUND} b JOIN ${LOG} l ON l.id = b.log_id
     WHERE b.xact = pg_current_xact_id_if_assigned() AND l.login = session_user)
$tf$`),
    ...['admin_record(text)', 'admin_enter(uuid)', 'admin_session()'].flatMap((f) => [
      sql(`ALTER FUNCTION ${S}.${f} OWNER TO ${OWNER}`),
      sql(`REVOKE ALL ON FUNCTION ${S}.${f} FROM PUBLIC`),
    ]),
    sql(`GRANT EXECUTE ON FUNCTION ${S}.admin_record(text), ${S}.admin_enter(uuid) TO ${ADMIN}`),
    // Every role that evaluates the admin policy must be able to call it; only members get true.
    sql(`GRANT EXECUTE ON FUNCTION ${S}.admin_session() TO PUBLIC`),
  ];
}

/** `protect --admin-access`: the admin policy and grants on one table. */
export function adminPolicy(schema: string, name: string): Statement[] {
  const rel = qualified(schema, name);
  const check = `(SELECT ${S}.admin_session())`;
  return [
    sql(`DROP POLICY IF EXISTS ${ident(ADMIN_POLICY)} ON ${rel}`),
    sql(`CREATE POLICY ${ident(ADMIN_POLICY)} ON ${rel} AS PERMISSIVE FOR ALL TO ${ADMIN}
  USING (${check})
  WITH CHECK (${check})`),
    sql(`GRANT SELECT, INSERT, UPDATE, DELETE ON ${rel} TO ${ADMIN}`),
  ];
}
