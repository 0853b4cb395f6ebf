/**
 * The SQL the executor wraps around an agent's statement: the transaction's settings before it,
 * and the end of the transaction and the session scrub after it. See executor.ts for the order.
 */
import { CONTEXT_SETTING } from '../context/token.ts';
import { resetCall } from '../sql/session.ts';

/**
 * The transaction's settings (bind parameters: the signed context, the three timeouts, the
 * search_path), sent before the statement and run before it is parsed (it is a later message).
 * standard_conforming_strings is forced on because the firewall's parser assumes it: with it off
 * (a role or database default) `SELECT '\' AS a, ' , pg_sleep(2)::text AS b --'` is two literals
 * to the firewall and a pg_sleep call to the server. search_path: see server-profile.ts.
 */
export const SETUP = `SELECT set_config('${CONTEXT_SETTING}', $1, true), set_config('statement_timeout', $2, true),
  set_config('lock_timeout', $3, true), set_config('idle_in_transaction_session_timeout', $4, true),
  set_config('search_path', $5, true), set_config('standard_conforming_strings', 'on', true)`;

/**
 * Nothing one request leaves on the connection may reach the next, whoever its tenant.
 * After a COMMIT (write mode) session-level changes survive, so the shared reset of
 * src/sql/session.ts runs (the same one withTenant uses) and all prepared statements are dropped.
 * DISCARD ALL would do it in one word but cannot run in the implicit transaction of a
 * multi-statement string, which keeps this to one message.
 * After a ROLLBACK (read mode) settings, the role, the context, cursors and LISTEN are already
 * undone, and nextval() cannot run READ ONLY; only what is not transactional remains: prepared
 * statements and session advisory locks. The shorter scrub saves server time on every read.
 * If the COMMIT itself fails, the rest of the string does not run: the executor then destroys the
 * connection instead of returning it to the pool.
 */
// The gateway's statements are unnamed, so every prepared statement can simply be dropped.
export const ROLLBACK = `ROLLBACK; ${resetCall(true)}`;
export const COMMIT = `COMMIT; ${resetCall(true)}`;

/**
 * The statement the explain tool runs. COSTS OFF because row estimates count every tenant's rows
 * (statistics are not filtered by RLS); the firewall checks this exact text.
 */
export function explainText(sql: string): string {
  return `EXPLAIN (COSTS OFF) ${sql}`;
}
