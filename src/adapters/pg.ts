/**
 * node-postgres: `withTenant(pool, tenantId, fn)` runs `fn(client)` in a transaction whose tenant
 * context is a signed token set through a bind parameter, then commits (or rolls back), resets the
 * session (src/sql/session.ts) and hands the connection back with nothing the transaction's SQL
 * did left on it, or destroys the connection when that cannot be guaranteed.
 *
 * Round trips for a request of N queries:
 * - a client created with `pipeline: true` (node-postgres >= 8.23): BEGIN, set_config and the first
 *   query travel together, so N + 1 round trips (the +1 is COMMIT and the session reset, one message);
 * - an ordinary client: N + 3 (BEGIN, set_config, the queries, COMMIT + reset);
 * - strict mode (`bindToTransaction: true`) asks the server for the transaction id before signing:
 *   one round trip more in either case.
 */
import type { QueryResultLike } from '../sql/queryable.ts';
import { TenantfenceError, ErrorCodes } from '../errors.ts';
import { assertTenantId } from '../context/tenant-id.ts';
import { CONTEXT_SETTING, parseSecret, signContext, type SigningKey } from '../context/token.ts';
import { runWithTenant } from '../context/storage.ts';
import { COMMIT_AND_RESET, ROLLBACK_AND_RESET, resetOutcome } from '../sql/session.ts';

/** What tenantfence needs of a node-postgres client (structural: `pg` is a peer dependency). */
export interface PgClientLike {
  query<R = Record<string, unknown>>(text: string, values?: unknown[]): Promise<QueryResultLike<R>>;
  release(destroy?: boolean | Error): void;
  readonly pipeline?: boolean;
}

export interface PgPoolLike {
  connect(): Promise<PgClientLike>;
}

export interface WithTenantOptions {
  /** The signing key; defaults to `TENANTFENCE_SECRET` from the environment. */
  readonly key?: SigningKey;
  /** Token lifetime in seconds (default 300): it only has to outlive the transaction. */
  readonly ttlSeconds?: number;
  /** Strict mode: bind the token to this transaction's id (costs one round trip). */
  readonly bindToTransaction?: boolean;
}

const SET_CONTEXT = `SELECT set_config('${CONTEXT_SETTING}', $1, true)`;

let envKey: SigningKey | undefined;
function defaultKey(): SigningKey {
  envKey ??= parseSecret(process.env.TENANTFENCE_SECRET);
  return envKey;
}

export async function withTenant<T>(
  pool: PgPoolLike,
  tenantId: string,
  fn: (client: PgClientLike) => Promise<T>,
  options: WithTenantOptions = {},
): Promise<T> {
  assertTenantId(tenantId);
  const key = options.key ?? defaultKey();
  const client = await pool.connect();
  let discard: Error | undefined;
  try {
    const { result, dirty } = await runWithTenant(tenantId, () => inTransaction(client, tenantId, key, fn, options));
    // SQL in the transaction left prepared statements behind: this connection is not pooled again.
    if (dirty) discard = new Error('prepared statements made by SQL were left on the connection');
    return result;
  } catch (error) {
    if (error instanceof CleanupError) discard = error;
    throw error;
  } finally {
    client.release(discard);
  }
}

/** The transaction could not be ended: the connection is destroyed, never pooled again. */
class CleanupError extends TenantfenceError {
  constructor(cause: unknown) {
    super(ErrorCodes.DATABASE, 'The connection failed while ending the transaction and was discarded; retry the request.', { cause });
  }
}

async function inTransaction<T>(
  client: PgClientLike,
  tenantId: string,
  key: SigningKey,
  fn: (client: PgClientLike) => Promise<T>,
  options: WithTenantOptions,
): Promise<{ result: T; dirty: boolean }> {
  const ttl = options.ttlSeconds === undefined ? {} : { ttlSeconds: options.ttlSeconds };
  let result: T;
  try {
    if (options.bindToTransaction) {
      await client.query('BEGIN');
      const { rows } = await client.query<{ xid: string }>('SELECT pg_current_xact_id()::text AS xid');
      await client.query(SET_CONTEXT, [signContext(key, tenantId, { ...ttl, xid: rows[0]!.xid })]);
      result = await fn(client);
    } else if (client.pipeline) {
      // A pipelining client writes BEGIN, set_config and fn's first query in one round trip.
      // Both settle before the transaction ends, so fn never outlives it on this connection.
      const [ready, done] = await Promise.allSettled([
        Promise.all([client.query('BEGIN'), client.query(SET_CONTEXT, [signContext(key, tenantId, ttl)])]),
        fn(client),
      ]);
      if (ready.status === 'rejected') throw ready.reason;
      if (done.status === 'rejected') throw done.reason;
      result = done.value;
    } else {
      await client.query('BEGIN');
      await client.query(SET_CONTEXT, [signContext(key, tenantId, ttl)]);
      result = await fn(client);
    }
  } catch (error) {
    await end(client, ROLLBACK_AND_RESET, error);
    throw error;
  }
  const { tag, dirty } = await end(client, COMMIT_AND_RESET);
  if (tag !== 'COMMIT') {
    // COMMIT of a failed transaction rolls back without an error; never report that as success.
    throw new TenantfenceError(
      ErrorCodes.DATABASE,
      'The transaction was rolled back because a statement in it failed; handle the error inside the callback or let it propagate.',
    );
  }
  return { result, dirty };
}

/** Ends the transaction and resets the session; a failure here discards the connection. */
async function end(client: PgClientLike, text: string, pending?: unknown): Promise<ReturnType<typeof resetOutcome>> {
  try {
    return resetOutcome(await client.query(text));
  } catch (error) {
    // The callback's own error, when there is one, is the one worth reporting.
    throw new CleanupError(pending ?? error);
  }
}
