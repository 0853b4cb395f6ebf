/**
 * node-postgres: `withTenant(pool, tenantId, fn)` runs `fn(client)` in a transaction whose tenant
 * context is a signed token set through a bind parameter, then commits (or rolls back) and hands
 * the connection back with no tenant state on it.
 *
 * Round trips for a request of N queries:
 * - a client created with `pipeline: true` (node-postgres >= 8.23): BEGIN, set_config and the first
 *   query travel together, so N + 1 round trips (the COMMIT is the +1);
 * - an ordinary client: N + 3 (BEGIN, set_config, the queries, COMMIT);
 * - strict mode (`bindToTransaction: true`) asks the server for the transaction id before signing:
 *   one round trip more in either case.
 */
import type { QueryResultLike } from '../sql/queryable.ts';
import { TenantfenceError, ErrorCodes } from '../errors.ts';
import { assertTenantId } from '../context/tenant-id.ts';
import { CONTEXT_SETTING, parseSecret, signContext, type SigningKey } from '../context/token.ts';
import { runWithTenant } from '../context/storage.ts';

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
// SQL inside the transaction may have copied the token into the session (`set_config(..., false)`
// survives COMMIT), so the end of every transaction also clears it: one simple-protocol message,
// one round trip, nothing left on the pooled connection.
const CLEAR = `SELECT set_config('${CONTEXT_SETTING}', '', false)`;
const COMMIT_AND_CLEAR = `COMMIT; ${CLEAR}`;
const ROLLBACK_AND_CLEAR = `ROLLBACK; ${CLEAR}`;

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
  let broken: unknown;
  try {
    return await runWithTenant(tenantId, () => inTransaction(client, tenantId, key, fn, options));
  } catch (error) {
    broken = error;
    throw error;
  } finally {
    // A connection whose cleanup failed is destroyed rather than returned to the pool.
    client.release(broken instanceof CleanupError ? broken : undefined);
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
): Promise<T> {
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
      const ready = Promise.all([client.query('BEGIN'), client.query(SET_CONTEXT, [signContext(key, tenantId, ttl)])]);
      ready.catch(() => undefined);
      [, result] = await Promise.all([ready, fn(client)]);
    } else {
      await client.query('BEGIN');
      await client.query(SET_CONTEXT, [signContext(key, tenantId, ttl)]);
      result = await fn(client);
    }
  } catch (error) {
    await finish(client, ROLLBACK_AND_CLEAR);
    throw error;
  }
  const tag = await finish(client, COMMIT_AND_CLEAR);
  if (tag !== 'COMMIT') {
    // COMMIT of a failed transaction rolls back without an error; never report that as success.
    throw new TenantfenceError(
      ErrorCodes.DATABASE,
      'The transaction was rolled back because a statement in it failed; handle the error inside the callback or let it propagate.',
    );
  }
  return result;
}

async function finish(client: PgClientLike, text: string): Promise<string | undefined> {
  let results: unknown;
  try {
    results = await client.query(text);
  } catch (error) {
    throw new CleanupError(error);
  }
  const first = Array.isArray(results) ? (results[0] as { command?: string }) : (results as { command?: string });
  return first?.command;
}
