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
  /** The database sent one row (or message) larger than the gateway's response cap. */
  RESULT_TOO_LARGE: 'TF_RESULT_TOO_LARGE',
  /** `protect` found permissive policies of someone else's on a table (they widen the tenant policy). */
  POLICY_CONFLICT: 'TF_POLICY_CONFLICT',
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

export function isTenantfenceError(value: unknown): value is TenantfenceError {
  return value instanceof TenantfenceError;
}

/** Maps a driver error to a coded one whose message names the fix and carries no data. */
export function toTenantfenceError(error: unknown): TenantfenceError {
  if (isTenantfenceError(error)) return error;
  const code = (error as { code?: unknown })?.code;
  if (code === '42501') {
    return new TenantfenceError(
      ErrorCodes.PRIVILEGE,
      'The connected role lacks a privilege this needs; connect as the database owner or a role with CREATEROLE and ownership of the tables.',
      { cause: error },
    );
  }
  if (typeof code === 'string' && /^(08|28|3D|57P03|ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ETIMEDOUT)/.test(code)) {
    return new TenantfenceError(ErrorCodes.CONNECTION, 'Could not connect to the database; check DATABASE_URL and that the server is running.', { cause: error });
  }
  const message = error instanceof Error ? error.message : String(error);
  return new TenantfenceError(ErrorCodes.DATABASE, `The database refused the change (${typeof code === 'string' ? code + ': ' : ''}${message}); fix the cause and run the command again.`, { cause: error });
}
