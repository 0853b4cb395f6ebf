/**
 * A database error as the agent sees it: a TF code, the SQLSTATE, and a message that names the fix.
 *
 * What is never passed on: DETAIL (a unique violation's DETAIL prints the conflicting key, which
 * may be another tenant's value), CONTEXT/WHERE, internal queries and bind parameters. What is
 * passed on, for the classes where it helps an LLM correct its SQL: Postgres's primary message,
 * which in these classes names only objects from the statement itself (columns, relations,
 * constraints, types, a literal of the statement) or values of rows the tenant can already see
 * (RLS predicates run before any non-leakproof expression of the query), and HINT for class 42.
 */
import { ErrorCodes, sqlstateOf, type ErrorCode } from '../errors.ts';
import { PoolTimeoutError, ResultTooLargeError } from './agent-connection.ts';
import { RecordError, StatementError } from './executor.ts';

export interface DatabaseErrorReply {
  readonly status: number;
  readonly code: ErrorCode;
  readonly message: string;
  readonly sqlstate?: string;
}

interface PgErrorLike {
  code?: unknown;
  message?: unknown;
  hint?: unknown;
}

const MAX = 400;

/**
 * Any failure of `Executor.execute` as the agent sees it. `write`: the statement ran in write
 * mode, where a lost connection leaves the outcome unknown (the write and its in-transaction
 * audit record committed together, or neither did).
 */
export function describeFailure(error: unknown, o: { statementTimeoutMs: number; maxResponseBytes: number; write: boolean }): DatabaseErrorReply {
  if (error instanceof StatementError) return describeDatabaseError(error.cause, o.statementTimeoutMs);
  if (error instanceof ResultTooLargeError) {
    return { status: 400, code: ErrorCodes.RESULT_TOO_LARGE, message: `A row (or a message quoting a value) from the database is larger than the ${o.maxResponseBytes}-byte response cap; select fewer or smaller columns (left(col, n), length(col)), and nothing was committed.` };
  }
  if (error instanceof PoolTimeoutError) {
    return { status: 503, code: ErrorCodes.DATABASE, message: `No database connection became free within ${error.timeoutMs} ms; retry shortly.` };
  }
  if (error instanceof RecordError) {
    return { status: 503, code: ErrorCodes.AUDIT, message: 'The audit record could not be written inside the transaction, so the statement was rolled back and nothing changed; retry, and tell an operator if it persists.' };
  }
  if (o.write) {
    return { status: 503, code: ErrorCodes.DATABASE, message: 'The gateway lost its database connection while the write was ending, so it may or may not have been committed; check before you retry.' };
  }
  return describeDatabaseError(undefined, 0);
}

export function describeDatabaseError(error: unknown, statementTimeoutMs: number): DatabaseErrorReply {
  const e = (error ?? {}) as PgErrorLike;
  const sqlstate = sqlstateOf(error);
  const primary = typeof e.message === 'string' ? e.message.split('\n')[0]!.slice(0, MAX) : '';
  const hint = typeof e.hint === 'string' ? ` Hint: ${e.hint.split('\n')[0]!.slice(0, MAX)}` : '';
  const reply = (code: ErrorCode, message: string, status = 400): DatabaseErrorReply => ({ status, code, message, ...(sqlstate ? { sqlstate } : {}) });
  if (!sqlstate) {
    return reply(ErrorCodes.DATABASE, 'The gateway lost its database connection while running the statement; retry the request.', 503);
  }
  const cls = sqlstate.slice(0, 2);
  if (sqlstate === '57014') {
    return reply(ErrorCodes.QUERY_TIMEOUT, `The statement ran past the ${statementTimeoutMs} ms timeout; filter with WHERE, aggregate less, or add a LIMIT.`);
  }
  if (sqlstate === '55P03') return reply(ErrorCodes.QUERY_TIMEOUT, 'The statement waited too long for a row lock; retry later.');
  if (sqlstate === '25006') return reply(ErrorCodes.READ_ONLY, 'This gateway is read-only; send a SELECT statement.');
  if (sqlstate === '42501') {
    return /row-level security/.test(primary)
      ? reply(ErrorCodes.PRIVILEGE, "The row is not in your tenant, so row-level security refused it; write only your own tenant's rows (tenant filtering is automatic).")
      : reply(ErrorCodes.PRIVILEGE, `The agent role may not do this (${primary}); use only the tables and columns listed by the schema endpoint.`);
  }
  if (cls === '23') return reply(ErrorCodes.CONSTRAINT, `The statement broke a constraint (${primary}); change the values you write.`);
  if (cls === '42' || cls === '22' || cls === '21' || sqlstate === '0A000') {
    return reply(ErrorCodes.SQL_INVALID, `The database could not run the statement: ${primary}.${cls === '42' ? hint : ''}`);
  }
  if (cls === '40') return reply(ErrorCodes.DATABASE, 'The transaction conflicted with another one and was rolled back; retry the request.', 409);
  if (cls === '08' || cls === '57' || cls === '53') {
    return reply(ErrorCodes.DATABASE, 'The database is unavailable or out of resources; retry the request later.', 503);
  }
  return reply(ErrorCodes.DATABASE, `The database refused the statement (SQLSTATE ${sqlstate}); rewrite it or ask an operator.`);
}
