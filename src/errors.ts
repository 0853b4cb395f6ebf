/**
 * The one error class of tenantfence. Codes are stable, prefixed `TF_`, and never reused
 * (PostgREST's habit): scripts and CI match on `code`, people read `message`.
 * A message is one sentence that names the fix, and never carries tenant ids, tokens,
 * secrets or query parameters.
 */
export const ErrorCodes = {
  /** A tenant id failed validation before any SQL was sent. */
  INVALID_TENANT: 'TF_INVALID_TENANT',
  /** Code asked for the current tenant outside `runWithTenant`/`withTenant`. */
  NO_TENANT: 'TF_NO_TENANT',
  /** The signing secret is missing or malformed. */
  NO_SECRET: 'TF_NO_SECRET',
  /** Bad command-line or option input. */
  USAGE: 'TF_USAGE',
  /** A command that acts on the user's database got none (no DATABASE_URL, no PG* variables, no --embedded). */
  NO_DATABASE: 'TF_NO_DATABASE',
  /** The database URL could not be parsed or the server could not be reached. */
  CONNECTION: 'TF_CONNECTION',
  /** The connected role lacks a privilege the operation needs. */
  PRIVILEGE: 'TF_PRIVILEGE',
  /** A table named on the command line does not exist. */
  NO_TABLE: 'TF_NO_TABLE',
  /** A table has no tenant column. */
  NO_TENANT_COLUMN: 'TF_NO_TENANT_COLUMN',
  /** The application role would bypass RLS (superuser, BYPASSRLS or table owner). */
  UNSAFE_ROLE: 'TF_UNSAFE_ROLE',
  /** `tenantfence init` has not been run on this database. */
  NOT_INITIALISED: 'TF_NOT_INITIALISED',
  /** The embedded PostgreSQL could not be started. */
  EMBEDDED: 'TF_EMBEDDED',
  /** The agent gateway refused a statement. */
  SQL_REJECTED: 'TF_SQL_REJECTED',
  /** A database error that is reported without its details. */
  DATABASE: 'TF_DATABASE',
  /** The gateway got a request it cannot run: malformed JSON, wrong types, parameter count. */
  BAD_REQUEST: 'TF_BAD_REQUEST',
  /** Missing, invalid or expired credentials. */
  UNAUTHENTICATED: 'TF_UNAUTHENTICATED',
  /** A per-tenant rate or concurrency limit was reached. */
  RATE_LIMITED: 'TF_RATE_LIMITED',
  /** An unknown route or table. */
  NOT_FOUND: 'TF_NOT_FOUND',
  /** A request body over the gateway's size cap. */
  PAYLOAD_TOO_LARGE: 'TF_PAYLOAD_TOO_LARGE',
  /** The statement ran longer than the gateway's statement or lock timeout. */
  QUERY_TIMEOUT: 'TF_QUERY_TIMEOUT',
  /** The database could not run the statement as written (syntax, unknown column, bad value). */
  SQL_INVALID: 'TF_SQL_INVALID',
  /** The statement broke a constraint (unique, foreign key, check, not null). */
  CONSTRAINT: 'TF_CONSTRAINT',
  /** A write reached a read-only transaction. */
  READ_ONLY: 'TF_READ_ONLY',
  /** The gateway could not write the audit record, so it withheld the result. */
  AUDIT: 'TF_AUDIT',
  /** A bug or an unexpected failure inside tenantfence; the message says what to report. */
  INTERNAL: 'TF_INTERNAL',
  /** SQL inside a fenced transaction ended it (COMMIT/ROLLBACK); the connection was discarded. */
  FENCE_BROKEN: 'TF_FENCE_BROKEN',
  /** The database sent one row (or message) larger than the gateway's response cap. */
  RESULT_TOO_LARGE: 'TF_RESULT_TOO_LARGE',
  /** A long-running command (bench) was stopped by SIGINT or SIGTERM after cleaning up. */
  INTERRUPTED: 'TF_INTERRUPTED',
  /** `protect` found permissive policies of someone else's on a table (they widen the tenant policy). */
  POLICY_CONFLICT: 'TF_POLICY_CONFLICT',
  /** `protect` found unique or foreign keys that leave the tenant column out (oracles, squatting). */
  GLOBAL_KEYS: 'TF_GLOBAL_KEYS',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export class TenantfenceError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TenantfenceError';
    this.code = code;
  }
}

/**
 * The SQLSTATE of a driver error, or undefined. Node's socket errors (ECONNRESET, EPIPE) also sit
 * in `code`, and EPIPE has five letters; no SQLSTATE class starts with E, so those are not one.
 */
export function sqlstateOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && /^[0-9A-DF-Z][0-9A-Z]{4}$/.test(code) ? code : undefined;
}

export function isTenantfenceError(value: unknown): value is TenantfenceError {
  return value instanceof TenantfenceError;
}

interface DriverError {
  readonly code?: unknown;
  readonly message?: unknown;
  readonly detail?: unknown;
  readonly hint?: unknown;
}

const firstLine = (value: unknown): string => (typeof value === 'string' ? value.split('\n')[0]!.trim() : '');

/** Maps a driver error to a coded one whose message names the fix and carries no data. */
export function toTenantfenceError(error: unknown): TenantfenceError {
  if (isTenantfenceError(error)) return error;
  const e = (error ?? {}) as DriverError;
  const code = typeof e.code === 'string' ? e.code : undefined;
  if (code === '42501') {
    return new TenantfenceError(ErrorCodes.PRIVILEGE, `The connected role lacks a privilege: ${firstLine(e.message)}; ${privilegeFix(e)}.`, { cause: error });
  }
  const problem = connectionProblem(error);
  if (problem) return new TenantfenceError(ErrorCodes.CONNECTION, `Could not connect to the database: ${problem}.`, { cause: error });
  const message = error instanceof Error ? error.message : String(error);
  return new TenantfenceError(ErrorCodes.DATABASE, `The database refused the change (${code ? code + ': ' : ''}${message}); fix the cause and run the command again.`, { cause: error });
}

/**
 * What to do about a privilege error (SQLSTATE 42501), from what PostgreSQL says is missing. The
 * usual case is managed PostgreSQL, where the admin is a CREATEROLE database owner.
 */
function privilegeFix(e: DriverError): string {
  const hint = firstLine(e.hint);
  if (hint) return hint.replace(/\.$/, '');
  const primary = firstLine(e.message);
  const detail = firstLine(e.detail).replace(/\.$/, '');
  let m: RegExpMatchArray | null;
  if ((m = primary.match(/must be (?:a )?member of role "(.+)"|must be able to SET ROLE "(.+)"/))) {
    const role = m[1] ?? m[2];
    return `a superuser or a role with ADMIN OPTION on ${role} grants it: GRANT "${role}" TO <this role> (add WITH INHERIT TRUE, SET TRUE on PostgreSQL 16 and later)`;
  }
  if (/row-level security/.test(primary)) return 'the table\'s policy refused the row for this role: write it with the tenant\'s context, or before the table is protected';
  if ((m = primary.match(/^must be owner of (\S+) (.+)$/))) return `connect as the owner of ${m[1]} ${m[2]}, or as a role that can act as its owner`;
  if (/permission denied to create role/.test(primary)) return 'connect as a role with CREATEROLE (on managed PostgreSQL, the admin user)';
  if (/permission denied to (alter|drop|grant|revoke|set) role/.test(primary) || /ADMIN option/.test(detail)) {
    return `${detail ? detail + '; ' : ''}from PostgreSQL 16 on, only the role's creator, a role it granted ADMIN OPTION to, or a superuser may do this`;
  }
  if (/permission denied to create database/.test(primary)) return 'connect as a role with CREATEDB, or create the database first';
  if ((m = primary.match(/permission denied for (database|schema) (.+)$/))) return `connect as the owner of ${m[1]} ${m[2]}, or have it GRANT CREATE ON ${m[1]!.toUpperCase()} ${m[2]} to this role`;
  return `${detail ? detail + '; ' : ''}connect as the database owner (a role with CREATEROLE that owns the tables)`;
}

/**
 * Why a connection failed, in words that say what to check: the fix for a wrong password, a
 * missing database, an unknown host, a refused connection and a timeout are all different.
 * Undefined when the error is not a connection failure.
 */
export function connectionProblem(error: unknown): string | undefined {
  const e = (error ?? {}) as DriverError;
  const code = typeof e.code === 'string' ? e.code : '';
  const message = typeof e.message === 'string' ? e.message : '';
  if (code === '28P01') return 'authentication failed; check the user name and password';
  if (code === '28000') return 'the server refused this login (no pg_hba.conf entry for it, or the role may not log in); check the user name';
  // node-postgres throws this before sending anything when a server asks for a password it lacks.
  if (/client password must be a string/.test(message)) {
    return 'the server asks for a password and none was given; put it in the URL (postgres://user:password@host:5432/database)';
  }
  if (code === '3D000') return 'the database does not exist; check the database name at the end of the URL';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'unknown host; check the host name';
  if (code === 'ECONNREFUSED') return 'connection refused; no server is listening at that host and port';
  // A SQLSTATE's own message may mention a timeout (57014 statement_timeout): not a connection.
  const socketLevel = sqlstateOf(error) === undefined;
  if (code === 'ETIMEDOUT' || (socketLevel && /timeout|timed out/i.test(message))) return 'timed out; check the host and port, and that a firewall lets the connection through';
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH') return 'the host is unreachable from here; check the host and the network';
  if (code === '57P03') return 'the server is starting up or shutting down; retry in a moment';
  if (code === '53300') return 'the server has no connection slots left; close idle connections or raise max_connections';
  if (code.startsWith('08') || code === 'ECONNRESET' || (socketLevel && /Connection terminated/.test(message))) {
    return `the connection failed (${firstLine(message) || code}); check the host, port and TLS settings`;
  }
  return undefined;
}
