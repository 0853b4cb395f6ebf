/**
 * The SQL of `tenantfence init`: roles, the `tenantfence` schema, the owner-only key table and the
 * verifier `tenantfence.current_tenant()`. Every statement is idempotent so the plan can run twice
 * and can be pasted into a team's own migrations (`--print`).
 */
import { ident, literal, qualified } from './quote.ts';
import { connectionRoleNames, CONTEXT_SETTING, OWNER_ROLE, SCHEMA, type Roles } from './roles.ts';
import { sql, type Statement } from './statement.ts';
import { actAs } from './membership.ts';
import { planAdmin } from './admin.ts';
import { openFenceFunction, resetSessionFunction, TRANSACTION_START } from './session.ts';

const S = ident(SCHEMA);
const OWNER = ident(OWNER_ROLE);

/**
 * Creates the role, or corrects its attributes when they differ. The ALTER runs only when needed:
 * concurrent inits (parallel test databases, several services) would otherwise collide on the
 * shared role's catalog row ("tuple concurrently updated").
 */
function ensureRole(name: string, attributes: string, differs: string): Statement {
  return sql(`DO $tf$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = ${literal(name)}) THEN
    -- an init in another database may create it first (roles are cluster-wide): not an error
    BEGIN
      CREATE ROLE ${ident(name)} ${attributes};
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
      NULL;
    END;
  ELSIF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = ${literal(name)} AND (${differs})) THEN
    ALTER ROLE ${ident(name)} ${attributes};
  END IF;
END $tf$`);
}

const LOCKED = 'NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION';
const PRIVILEGED = 'rolsuper OR rolbypassrls OR rolcreatedb OR rolcreaterole OR rolreplication';

/**
 * Verifies the context token set with `set_config('tenantfence.context', $1, true)` and returns the
 * tenant id, or NULL for anything else. Policies call it as `(select tenantfence.current_tenant())`
 * so it runs once per statement (an initPlan), not once per row.
 *
 * Why it is shaped like this (docs/context.md, "The verifier", has the measurements):
 * - SECURITY DEFINER owned by a NOLOGIN role: only that role can read `tenantfence.keys`.
 * - HMAC-SHA256 from two calls of the built-in sha256() over precomputed pads: no pgcrypto, and
 *   no signing function exists in the database for SQL to call.
 * - No `SET search_path` clause: switching it on every call cost ~1.5 µs. Instead every function,
 *   operator, type and table in the body is schema-qualified, so no search_path a caller sets can
 *   redirect a name (pg_temp is never searched for functions or operators, and no type is named
 *   unqualified). `IS DISTINCT FROM` is avoided because it looks `=` up through the search_path (COALESCE is syntax, not a function).
 * - Few, small PL/pgSQL expressions: each is re-initialised on its first use in a transaction,
 *   which is what a request pays. One query reads the key and checks the MAC and the expiry.
 * - The MAC covers `left(token, -65)`: once it matches, the payload is one tenantfence signed, so
 *   its version, its field count and its digits need no check of their own (the signer writes only
 *   `v1`, refuses dots in tenant ids, and writes the expiry as digits), and no regular expression
 *   is needed. The character between payload and MAC is not covered and need not be: changing it
 *   changes nothing the function reads. A token longer than any tenantfence signs costs only its
 *   own statement's time (statement_timeout bounds it).
 * - No EXCEPTION block (each one opens a subtransaction).
 * - now() is the transaction's start time, which SQL cannot move.
 * - A token bound to a transaction id is valid only in that transaction (strict mode).
 */
export const currentTenantFunction = `CREATE OR REPLACE FUNCTION ${S}.current_tenant() RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER PARALLEL SAFE
AS $tf$
DECLARE
  token pg_catalog.text := pg_catalog.current_setting(${literal(CONTEXT_SETTING)}, true);
  msg pg_catalog.text := pg_catalog.left(token, -65);
  ok pg_catalog.bool;
BEGIN
  SELECT pg_catalog.encode(pg_catalog.sha256(k.outer_pad OPERATOR(pg_catalog.||)
           pg_catalog.sha256(k.inner_pad OPERATOR(pg_catalog.||) pg_catalog.textsend(msg))), 'hex')
           OPERATOR(pg_catalog.=) pg_catalog.right(token, 64)
    INTO ok
    FROM ${S}.keys k WHERE k.kid OPERATOR(pg_catalog.=) pg_catalog.split_part(msg, '.', 2) AND k.retired_at IS NULL;
  IF ok IS NOT TRUE THEN
    RETURN NULL;
  END IF;
  -- Reached only with a payload whose MAC matched, so the cast cannot fail. (Inside the query
  -- above it could: the planner folds expressions of the function's variables before the MAC
  -- is ever compared.)
  IF pg_catalog.split_part(msg, '.', 4)::pg_catalog.int8 OPERATOR(pg_catalog.<) pg_catalog.date_part('epoch', pg_catalog.now()) THEN
    RETURN NULL;
  END IF;
  -- Strict mode only: the nested condition is never even prepared for an unbound token.
  IF pg_catalog.split_part(msg, '.', 5) OPERATOR(pg_catalog.<>) '' THEN
    IF NOT COALESCE(pg_catalog.split_part(msg, '.', 5) OPERATOR(pg_catalog.=)
                    pg_catalog.pg_current_xact_id_if_assigned()::pg_catalog.text, false) THEN
      RETURN NULL;
    END IF;
  END IF;
  RETURN pg_catalog.split_part(msg, '.', 3);
END
$tf$`;

/**
 * Raised by the fence engine's end message when the transaction it opened is no longer the one
 * in progress: SQL inside the fence ran COMMIT or ROLLBACK (and maybe BEGIN). now() is the start
 * time of the current transaction, which SQL cannot set, so a different value means a different
 * transaction. The error aborts the rest of the end message: nothing after the break is committed.
 */
export const fenceIntactFunction = `CREATE OR REPLACE FUNCTION ${S}.fence_intact(opened bigint) RETURNS void
LANGUAGE plpgsql STABLE AS $tf$
BEGIN
  IF ${TRANSACTION_START} OPERATOR(pg_catalog.<>) opened THEN
    RAISE EXCEPTION 'tenantfence: the fenced transaction was ended by SQL inside it' USING ERRCODE = '25000';
  END IF;
END
$tf$`;

/**
 * `init --app-logins N`: login roles `<app>_c1` … `<app>_cN`, one per pooled connection
 * (`rolePool` in tenantfence/pg), each holding the app role's privileges by membership and nothing
 * else. PostgreSQL lets a session signal (`pg_cancel_backend`, `pg_terminate_backend`) and read
 * the activity and SQL text (`pg_stat_activity`) of sessions of the roles it has the privileges
 * of; distinct login roles that are members of the app role, never of each other, have none of
 * each other's, so one tenant's SQL cannot cancel, kill or watch the request of another tenant
 * running at the same time. init revokes those functions from PUBLIC where it may (a superuser);
 * on a managed server it may not, and this is what holds there.
 */
function planConnectionRoles(app: string, count: number): Statement[] {
  return connectionRoleNames(app, count).flatMap((name) => [
    ensureRole(name, `LOGIN INHERIT ${LOCKED}`, `NOT rolcanlogin OR NOT rolinherit OR ${PRIVILEGED}`),
    sql(`GRANT ${ident(app)} TO ${ident(name)}`),
  ]);
}

/** A function owned by the NOLOGIN owner that every role may call. */
function ownedFunction(definition: string, signature: string): Statement[] {
  return [
    sql(definition),
    sql(`ALTER FUNCTION ${signature} OWNER TO ${OWNER}`),
    sql(`REVOKE ALL ON FUNCTION ${signature} FROM PUBLIC`),
    sql(`GRANT EXECUTE ON FUNCTION ${signature} TO PUBLIC`),
  ];
}

export interface InitPlanOptions {
  readonly roles: Roles;
  /** Whether the agent role may log in (the gateway connects as it). */
  readonly agentLogin: boolean;
  /**
   * Whether the app role may create temporary objects. Off by default: a temp view can shadow a
   * table for later SQL on the same connection (withTenant discards temp objects after every
   * transaction, but a connection used outside it would not be).
   */
  readonly appTemp?: boolean;
  /** Login roles for one connection each (`init --app-logins N`), members of the app role. */
  readonly appLogins?: number;
}

export function planInit({ roles, agentLogin, appTemp = false, appLogins = 0 }: InitPlanOptions): Statement[] {
  return [
    ensureRole(OWNER_ROLE, `NOLOGIN ${LOCKED}`, `rolcanlogin OR ${PRIVILEGED}`),
    // A managed admin (CREATEROLE, not superuser) must become able to act as the owner first.
    actAs(OWNER_ROLE),
    // The app role is created if missing; an existing one is checked (refused) by init, not altered.
    ensureRole(roles.app, 'LOGIN', 'false'),
    ...planConnectionRoles(roles.app, appLogins),
    // The agent gets nothing it was not granted: no inherited privileges, no attributes.
    ensureRole(
      roles.agent,
      `${agentLogin ? 'LOGIN' : 'NOLOGIN'} NOINHERIT ${LOCKED}`,
      `rolcanlogin <> ${agentLogin} OR rolinherit OR ${PRIVILEGED}`,
    ),
    sql(`CREATE SCHEMA IF NOT EXISTS ${S} AUTHORIZATION ${OWNER}`),
    sql(`ALTER SCHEMA ${S} OWNER TO ${OWNER}`),
    sql(`REVOKE ALL ON SCHEMA ${S} FROM PUBLIC`),
    // Every role that runs a policy (owners included, under FORCE) must reach current_tenant().
    sql(`GRANT USAGE ON SCHEMA ${S} TO PUBLIC`),
    sql(`CREATE TABLE IF NOT EXISTS ${qualified(SCHEMA, 'keys')} (
  kid text PRIMARY KEY CHECK (kid ~ '^[a-z0-9]{1,16}$'),
  inner_pad bytea NOT NULL CHECK (length(inner_pad) = 64),
  outer_pad bytea NOT NULL CHECK (length(outer_pad) = 64),
  created_at timestamptz NOT NULL DEFAULT now(),
  retired_at timestamptz
)`),
    sql(`ALTER TABLE ${qualified(SCHEMA, 'keys')} OWNER TO ${OWNER}`),
    sql(`REVOKE ALL ON ${qualified(SCHEMA, 'keys')} FROM PUBLIC`),
    sql(currentTenantFunction),
    sql(`ALTER FUNCTION ${S}.current_tenant() OWNER TO ${OWNER}`),
    sql(`REVOKE ALL ON FUNCTION ${S}.current_tenant() FROM PUBLIC`),
    sql(`GRANT EXECUTE ON FUNCTION ${S}.current_tenant() TO PUBLIC`),
    // An earlier version's one-argument reset (its reseed was costly); the engine calls the new one.
    sql(`DROP FUNCTION IF EXISTS ${S}.reset_session(boolean)`),
    // The fence engine's session reset and transaction check (src/sql/session.ts, src/context/fence.ts).
    ...ownedFunction(resetSessionFunction, `${S}.reset_session(boolean, double precision)`),
    ...ownedFunction(fenceIntactFunction, `${S}.fence_intact(bigint)`),
    ...ownedFunction(openFenceFunction, `${S}.open_fence(text, text, text, text)`),
    // No CREATE anywhere, no TEMP: PUBLIC holds both by default (CREATE on public before PG 15),
    // so they are taken from PUBLIC and from both roles; TEMP goes back to the app role by name
    // only with --app-temp.
    sql(`REVOKE CREATE ON SCHEMA public FROM PUBLIC`),
    sql(`DO $tf$ BEGIN
  EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
  EXECUTE format('REVOKE CREATE, TEMPORARY ON DATABASE %I FROM %I, %I', current_database(), ${literal(roles.agent)}, ${literal(roles.app)});
  ${appTemp ? `EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO %I', current_database(), ${literal(roles.app)});` : '-- the app role gets no TEMP (init --app-temp grants it)'}
END $tf$`),
    ...planAuditLog(roles),
    ...planAdmin(),
  ];
}

/** Domain separation: an audit MAC can never be mistaken for a context token's MAC (`v1.` …). */
export const AUDIT_MAC_PREFIX = 'tenantfence-audit-v1.';

/**
 * Appends one gateway audit record (issue 3, item 6). The gateway and the agent's SQL log in as
 * the same role, so a privilege cannot tell them apart; a secret can. The record is JSON text
 * signed with HMAC-SHA256 under the tenantfence key, which the gateway holds and SQL cannot read,
 * so agent SQL that calls this function cannot forge a record. The request id is the primary key:
 * a replayed record is refused. The gateway calls it on another connection after the agent's
 * transaction has ended, so the agent's statement cannot roll it back either.
 */
const auditAppendFunction = `CREATE OR REPLACE FUNCTION ${S}.audit_append(record text, mac text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $tf$
DECLARE
  r jsonb;
  pad_in bytea;
  pad_out bytea;
BEGIN
  IF record IS NULL OR mac IS NULL OR length(record) > 262144 THEN
    RAISE EXCEPTION 'tenantfence: invalid audit record' USING ERRCODE = '42501';
  END IF;
  r := record::jsonb;
  SELECT k.inner_pad, k.outer_pad INTO pad_in, pad_out
    FROM ${S}.keys k WHERE k.kid = r->>'kid' AND k.retired_at IS NULL;
  IF pad_in IS NULL OR encode(sha256(pad_out || sha256(pad_in || convert_to(${literal(AUDIT_MAC_PREFIX)} || record, 'UTF8'))), 'hex') <> mac THEN
    RAISE EXCEPTION 'tenantfence: invalid audit record' USING ERRCODE = '42501';
  END IF;
  INSERT INTO ${S}.audit_log (request_id, tenant_id, principal, fingerprint, statement, verdict, reason,
                              row_count, duration_ms, error_code, sqlstate)
  VALUES ((r->>'id')::uuid, r->>'tenant', r->>'principal', r->>'fingerprint', r->>'statement', r->>'verdict',
          r->>'reason', (r->>'rows')::bigint, (r->>'ms')::double precision, r->>'code', r->>'sqlstate');
END
$tf$`;

/**
 * `tenantfence.audit_log`: owned by the NOLOGIN owner, RLS forced, readable per tenant by the app
 * role (the agent role gets no privilege on it), written only through audit_append(). No role but
 * the owner holds INSERT, UPDATE, DELETE or TRUNCATE. The key is a random request id, not a
 * sequence: a global counter would show one tenant how busy the others are.
 */
export function planAuditLog(roles: Roles): Statement[] {
  const log = qualified(SCHEMA, 'audit_log');
  return [
    sql(`CREATE TABLE IF NOT EXISTS ${log} (
  request_id uuid PRIMARY KEY,
  at timestamptz NOT NULL DEFAULT clock_timestamp(),
  tenant_id text NOT NULL,
  principal text,
  fingerprint text,
  statement text,
  verdict text NOT NULL CHECK (verdict IN ('ok', 'error', 'rejected')),
  reason text,
  row_count bigint,
  duration_ms double precision,
  error_code text,
  sqlstate text
)`),
    sql(`ALTER TABLE ${log} OWNER TO ${OWNER}`),
    sql(`REVOKE ALL ON ${log} FROM PUBLIC`),
    sql(`CREATE INDEX IF NOT EXISTS ${ident('audit_log_tenant_at_idx')} ON ${log} (tenant_id, at)`),
    sql(`ALTER TABLE ${log} ENABLE ROW LEVEL SECURITY`),
    sql(`ALTER TABLE ${log} FORCE ROW LEVEL SECURITY`),
    sql(`DROP POLICY IF EXISTS ${ident('tenantfence_audit_read')} ON ${log}`),
    sql(`CREATE POLICY ${ident('tenantfence_audit_read')} ON ${log} FOR SELECT TO PUBLIC
  USING (tenant_id = (SELECT ${S}.current_tenant()))`),
    sql(`DROP POLICY IF EXISTS ${ident('tenantfence_audit_append')} ON ${log}`),
    sql(`CREATE POLICY ${ident('tenantfence_audit_append')} ON ${log} FOR INSERT TO ${OWNER} WITH CHECK (true)`),
    sql(`GRANT SELECT ON ${log} TO ${ident(roles.app)}`),
    sql(auditAppendFunction),
    sql(`ALTER FUNCTION ${S}.audit_append(text, text) OWNER TO ${OWNER}`),
    sql(`REVOKE ALL ON FUNCTION ${S}.audit_append(text, text) FROM PUBLIC`),
    sql(`GRANT EXECUTE ON FUNCTION ${S}.audit_append(text, text) TO ${ident(roles.app)}, ${ident(roles.agent)}`),
  ];
}
