/**
 * Ending a tenant's transaction on a pooled connection so that nothing its SQL did reaches the
 * next user of that connection, whoever its tenant.
 *
 * SQL running in a transaction can leave session state behind that COMMIT (and, for some of it,
 * ROLLBACK) keeps: the context copied to the session (`set_config(..., false)`), other settings
 * (`search_path`), `SET ROLE`, WITH HOLD cursors, LISTEN, session advisory locks, temporary tables,
 * views and functions (a temp view named like a real table shadows it for the next request), a
 * seeded `random()` (`setseed`), and prepared statements (PREPARE can reuse a driver's statement
 * name, so a replaced statement would run under the next tenant's context; DEALLOCATE can drop the
 * driver's own).
 *
 * All of it is undone by one call, `tenantfence.reset_session(drop_prepared)`, installed by
 * `init` and owned by the NOLOGIN owner (SQL cannot replace it). Being a PL/pgSQL function, its
 * prepared-statement check is planned once per session, not once per reset (a plain query was
 * parsed and planned on every reset: 20–30 µs). Every name in it is schema-qualified, so a
 * search_path left by SQL cannot redirect it, and RESET ALL runs first anyway.
 *
 * `drop_prepared`: a driver that has no named statements of its own on the connection (node-postgres
 * by default, the gateway always) drops every prepared statement (DEALLOCATE ALL), which needs no
 * check. Otherwise the function returns -1 when SQL made a prepared statement (the connection must
 * be destroyed), else the number of protocol-level statements left, which the binding compares with
 * the number its driver believes it has (fewer means SQL dropped one: destroy too).
 */
import { randomInt } from 'node:crypto';
import { literal } from './quote.ts';
import { CONTEXT_SETTING, SCHEMA } from './roles.ts';

export const RESET_FUNCTION = `${SCHEMA}.reset_session`;
export const OPEN_FUNCTION = `${SCHEMA}.open_fence`;

/**
 * The current transaction's start in microseconds: the fence engine reads it when it opens the
 * fence and `tenantfence.fence_intact()` compares it when it ends (src/sql/init.ts).
 */
export const TRANSACTION_START = `(pg_catalog.date_part('epoch', pg_catalog.now()) OPERATOR(pg_catalog.*) 1000000)::pg_catalog.int8`;

/**
 * Pinned in every fenced transaction, besides the timeouts. `row_security = off` on the role would
 * make every request on a protected table fail; another DateStyle or IntervalStyle makes the
 * drivers' date and interval parsers return garbage. (bytea_output is left alone: the drivers
 * read both formats. The gateway adds standard_conforming_strings and its search_path.)
 */
export const PINNED_SETTINGS: Readonly<Record<string, string>> = Object.freeze({
  row_security: 'on',
  DateStyle: 'ISO, MDY',
  IntervalStyle: 'postgres',
});

/**
 * Opens the fence inside the caller's transaction: sets the signed context and pins the timeouts
 * and `PINNED_SETTINGS` for this transaction only (`set_config(…, true)`), so that a default
 * someone set on the role (`ALTER ROLE … SET`) cannot change how the fenced SQL behaves; returns
 * the transaction's start for `fence_intact`. One PL/pgSQL statement whose plan is kept for the
 * session: as seven `set_config` calls in the request's own SQL it was parsed, planned and bound
 * (seven parameters) on every request, which cost more server time than the query it fenced.
 * SECURITY INVOKER and owned by the NOLOGIN owner: it can do nothing its caller could not do with
 * `set_config`, and SQL cannot replace it. Every name is schema-qualified.
 */
export const openFenceFunction = `CREATE OR REPLACE FUNCTION ${OPEN_FUNCTION}(context text, statement_timeout text, lock_timeout text, idle_timeout text) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $tf$
BEGIN
  PERFORM pg_catalog.set_config(${literal(CONTEXT_SETTING)}, context, true),
    pg_catalog.set_config('statement_timeout', statement_timeout, true),
    pg_catalog.set_config('lock_timeout', lock_timeout, true),
    pg_catalog.set_config('idle_in_transaction_session_timeout', idle_timeout, true),
    ${Object.entries(PINNED_SETTINGS).map(setLocal).join(',\n    ')};
  RETURN ${TRANSACTION_START};
END
$tf$`;

export const resetSessionFunction = `CREATE OR REPLACE FUNCTION ${RESET_FUNCTION}(drop_prepared boolean, seed double precision) RETURNS integer
LANGUAGE plpgsql VOLATILE AS $tf$
DECLARE
  made_by_sql boolean;
  kept integer;
BEGIN
  -- RESET ALL leaves the role and the session authorization alone, hence the two after it. One
  -- EXECUTE of the seven: each EXECUTE of its own cost about 0.4 µs more.
  EXECUTE 'RESET ALL; RESET ROLE; RESET SESSION AUTHORIZATION; CLOSE ALL; UNLISTEN *; DISCARD TEMP; DISCARD SEQUENCES';
  PERFORM pg_catalog.pg_advisory_unlock_all();
  PERFORM pg_catalog.set_config(${literal(CONTEXT_SETTING)}, '', false);
  -- A seed chosen by SQL would make the next request's random() predictable: reseed with one the
  -- engine drew from Node's CSPRNG (drawing it here, from gen_random_uuid(), cost ~10 µs).
  PERFORM pg_catalog.setseed(seed);
  IF drop_prepared THEN
    EXECUTE 'DEALLOCATE ALL';
    RETURN 0;
  END IF;
  SELECT pg_catalog.bool_or(p.from_sql), pg_catalog.count(*) FILTER (WHERE NOT p.from_sql)
    INTO made_by_sql, kept FROM pg_catalog.pg_prepared_statements p;
  RETURN CASE WHEN made_by_sql THEN -1 ELSE kept END;
END
$tf$`;


/**
 * SQL in the fence may have left `statement_timeout = 1` for the session; the end's statements must
 * not be cancelled by it, so the timeout is lifted first (RESET ALL in the reset restores it).
 */
const UNTIMED = 'SET statement_timeout = 0';

/**
 * The end of a fenced transaction, one simple-protocol message. `fence_intact` fails (25000) when
 * the fence's transaction is no longer the current one, which aborts the rest: nothing is
 * committed after a break. Results: [SET, fence_intact, COMMIT|ROLLBACK, reset].
 */
export function endBatch(finish: 'COMMIT' | 'ROLLBACK', opened: string, dropPrepared: boolean): string {
  return `${UNTIMED}; SELECT ${SCHEMA}.fence_intact(${opened}); ${finish}; ${resetCall(dropPrepared)}`;
}

/** After an error: roll back (when inside a transaction block) and reset. The last result is the reset. */
export function abortBatch(inTransaction: boolean, dropPrepared: boolean): string {
  return `${inTransaction ? 'ROLLBACK; ' : ''}${UNTIMED}; ${resetCall(dropPrepared)}`;
}

/** `set_config(name, value, true)` with both as literals: for this transaction only. */
function setLocal([name, value]: [string, string]): string {
  return `pg_catalog.set_config(${literal(name)}, ${literal(value)}, true)`;
}

/** `FenceOptions.asyncCommit`: pinned with the other settings, and set again after a one-statement reset. */
export const ASYNC_COMMIT: Readonly<Record<string, string>> = Object.freeze({ synchronous_commit: 'off' });

/**
 * The call that resets the session, as SQL text (no parameters: it goes in simple-protocol
 * batches). The seed is a fresh random number in [-1, 1], never anything a caller supplies.
 * `asyncCommit`: the reset runs before the COMMIT of a one-statement implicit transaction, and
 * its RESET ALL would also undo a transaction's `synchronous_commit = off`; this sets it again,
 * after the reset (the select list is evaluated in order).
 */
export function resetCall(dropPrepared: boolean, asyncCommit = false): string {
  const seed = (randomInt(0, 2 ** 47) / 2 ** 46 - 1).toFixed(15);
  const calls = [`${RESET_FUNCTION}(${dropPrepared}, ${seed}) AS kept`, ...(asyncCommit ? Object.entries(ASYNC_COMMIT).map(setLocal) : [])];
  return `SELECT ${calls.join(', ')}`;
}

/**
 * What the reset said: whether the connection may be pooled again. `expected` is the number of
 * prepared statements the driver believes it has; undefined when it dropped them all.
 */
export function resetIsClean(kept: unknown, expected: number | undefined): boolean {
  const n = Number(kept);
  if (!Number.isInteger(n) || n < 0) return false;
  return expected === undefined ? n === 0 : n === expected;
}
