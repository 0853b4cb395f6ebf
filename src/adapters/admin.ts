/**
 * `withAdmin(pool, reason, fn)`: the one way to read or change rows across tenants (support,
 * operations). The pool connects as a named admin login that is a member of `tenantfence_admin`
 * (never the app or agent role: they are not members, and the audit's role rules refuse them if
 * they become one). The reason is recorded in `tenantfence.admin_log` and committed before `fn`
 * runs, so a use that fails or rolls back is on record too; the transaction is then bound to that
 * record, which is what the admin policy (`protect --admin-access`) admits rows for.
 *
 * This runs its own transaction on a plain client; it belongs on the fence engine (runFenced)
 * once that lands, for the engine's timeouts and session reset.
 */
import { TenantfenceError, ErrorCodes, toTenantfenceError } from '../errors.ts';
import type { QueryResultLike } from '../sql/queryable.ts';

export interface AdminClientLike {
  query<R = Record<string, unknown>>(text: string, values?: unknown[]): Promise<QueryResultLike<R>>;
  release(destroy?: boolean | Error): void;
}

export interface AdminPoolLike {
  connect(): Promise<AdminClientLike>;
}

export async function withAdmin<T>(pool: AdminPoolLike, reason: string, fn: (client: AdminClientLike) => Promise<T>): Promise<T> {
  if (typeof reason !== 'string' || reason.trim().length < 3 || reason.length > 1000) {
    throw new TenantfenceError(ErrorCodes.USAGE, 'withAdmin needs a reason of 3 to 1000 characters (a ticket, an incident); it is recorded with every use.');
  }
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    // Outside any transaction: the record commits on its own, before the admin SQL runs.
    const { rows } = await client.query<{ id: string }>('SELECT tenantfence.admin_record($1) AS id', [reason]).catch((error: unknown) => {
      throw refused(error);
    });
    await client.query('BEGIN');
    try {
      await client.query('SELECT tenantfence.admin_enter($1)', [rows[0]!.id]);
      const result = await fn(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch((e: unknown) => {
        broken = e as Error;
      });
      throw error;
    }
  } finally {
    client.release(broken);
  }
}

function refused(error: unknown): TenantfenceError {
  if ((error as { code?: unknown })?.code === '42501') {
    return new TenantfenceError(
      ErrorCodes.PRIVILEGE,
      'withAdmin needs a login that is a member of tenantfence_admin (GRANT tenantfence_admin TO <admin login>), never the app or agent role.',
      { cause: error },
    );
  }
  return toTenantfenceError(error);
}
