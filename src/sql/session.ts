/**
 * Ending a tenant's transaction on a pooled connection so that nothing the transaction's SQL did
 * reaches the next user of that connection, whoever its tenant.
 *
 * SQL running in a transaction can leave session state behind that COMMIT (and, for some of it,
 * ROLLBACK) keeps: the context copied to the session (`set_config(..., false)`), other settings
 * (`search_path`), `SET ROLE`, WITH HOLD cursors, LISTEN, session advisory locks, temporary tables,
 * views and functions (a temp view named like a real table shadows it for the next request), and
 * prepared statements (PREPARE reuses the names node-postgres gives its named queries, so a
 * replaced statement would run under the next tenant's context). All of it is undone here in one
 * simple-protocol message after COMMIT or ROLLBACK: one round trip. Prepared statements cannot be
 * dropped wholesale without breaking the driver's own named statements, so any made by SQL
 * (`from_sql`) marks the connection dirty, and the caller destroys it instead of pooling it.
 */
import { CONTEXT_SETTING } from '../context/token.ts';

/** Undoes every kind of session state above except prepared statements (callers differ there). */
export const SESSION_RESET = [
  'CLOSE ALL',
  'UNLISTEN *',
  'RESET ALL',
  // RESET ALL leaves the role and the session authorization alone.
  'RESET ROLE',
  'RESET SESSION AUTHORIZATION',
  'DISCARD TEMP',
  'DISCARD SEQUENCES',
].join('; ');

/** Session advisory locks survive COMMIT and ROLLBACK alike; so does a session-level context. */
export const UNLOCK_AND_CLEAR = `SELECT pg_catalog.pg_advisory_unlock_all(), pg_catalog.set_config('${CONTEXT_SETTING}', '', false)`;

const RESET = `${SESSION_RESET}; ${UNLOCK_AND_CLEAR},
     EXISTS (SELECT 1 FROM pg_catalog.pg_prepared_statements WHERE from_sql) AS dirty`;

export const COMMIT_AND_RESET = `COMMIT; ${RESET}`;
export const ROLLBACK_AND_RESET = `ROLLBACK; ${RESET}`;

/** Reads the outcome of COMMIT_AND_RESET / ROLLBACK_AND_RESET from node-postgres's results. */
export function resetOutcome(results: unknown): { tag: string | undefined; dirty: boolean } {
  const list = (Array.isArray(results) ? results : [results]) as Array<{ command?: string; rows?: Array<{ dirty?: boolean }> }>;
  return { tag: list[0]?.command, dirty: list[list.length - 1]?.rows?.[0]?.dirty !== false };
}
