/**
 * Drizzle binding of the fence engine: `withTenant(db, tenant, async (tx) => …)` for a Drizzle
 * database over node-postgres (`drizzle-orm/node-postgres`) or postgres.js (`drizzle-orm/postgres-js`).
 * The fenced transaction comes from the driver's binding (./pg.ts, ./postgres-js.ts); `tx` is the
 * object Drizzle itself passes to `db.transaction(async (tx) => …)`, bound to the fenced
 * connection, so everything Drizzle offers there works, and `tx.transaction()` nests as a SAVEPOINT
 * the way Drizzle nests inside a transaction — it never sends BEGIN or COMMIT, so it cannot end
 * the fence. `tx.rollback()` rolls the whole fence back.
 *
 * The Drizzle session classes are constructed here (they are exported by drizzle-orm, but not
 * documented): a Drizzle upgrade is checked by the binding suite (test/adapters/).
 */
import type { PgDatabase } from 'drizzle-orm/pg-core';
import { entityKind } from 'drizzle-orm';
import { TenantfenceError, ErrorCodes } from '../errors.ts';
import { runFenced, type FenceConnection, type FenceOptions } from '../context/fence.ts';
import { connect, type PgFenceConnection, type PgPoolLike } from './pg.ts';
import { reserve, fencedSql, type PostgresJsFenceConnection, type PostgresJsSql } from './postgres-js.ts';
import { Lease, tenantArguments } from './lease.ts';

type AnyPgDatabase = PgDatabase<any, any, any>;

/** What `db.transaction(async (tx) => …)` passes its callback, for this database. */
export type TenantTransaction<D extends AnyPgDatabase> = Parameters<Parameters<D['transaction']>[0]>[0];
export type WithTenantOptions = FenceOptions;

export function withTenant<D extends AnyPgDatabase, T>(db: D, tenant: string, fn: (tx: TenantTransaction<D>) => Promise<T>, options?: WithTenantOptions): Promise<T>;
export function withTenant<D extends AnyPgDatabase, T>(db: D, fn: (tx: TenantTransaction<D>) => Promise<T>, options?: WithTenantOptions): Promise<T>;
export async function withTenant<D extends AnyPgDatabase, T>(
  db: D,
  tenantOrFn: string | ((tx: TenantTransaction<D>) => Promise<T>),
  fnOrOptions?: ((tx: TenantTransaction<D>) => Promise<T>) | WithTenantOptions,
  maybeOptions?: WithTenantOptions,
): Promise<T> {
  const [tenant, fn, options] = tenantArguments(tenantOrFn, fnOrOptions, maybeOptions);
  const driver = driverOf(db);
  const bind = driver === 'node-postgres' ? await nodePostgres() : await postgresJs();
  const client = (db as unknown as { $client: unknown }).$client;
  const acquire = driver === 'node-postgres' ? () => connect(client as PgPoolLike) : () => reserve(client as PostgresJsSql);
  return runFenced(acquire, tenant, async (c) => {
    const lease = new Lease();
    try {
      return await fn(bind(db, c, lease) as TenantTransaction<D>);
    } finally {
      lease.end();
    }
  }, options);
}

type Bind = (db: AnyPgDatabase, connection: FenceConnection, lease: Lease) => unknown;

interface DrizzleInternals {
  dialect: unknown;
  session: { schema: unknown; options: unknown; constructor: { [entityKind]?: string } };
}

function driverOf(db: AnyPgDatabase): 'node-postgres' | 'postgres-js' {
  const kind = (db as unknown as DrizzleInternals).session?.constructor?.[entityKind];
  if (kind === 'NodePgSession') return 'node-postgres';
  if (kind === 'PostgresJsSession') return 'postgres-js';
  throw new TenantfenceError(ErrorCodes.USAGE, 'tenantfence/drizzle supports a Drizzle database over node-postgres or postgres.js; pass the db that drizzle() returned.');
}

/** Each driver's session module is imported only when used: each needs its own driver installed. */
async function nodePostgres(): Promise<Bind> {
  const { NodePgSession, NodePgTransaction } = await import('drizzle-orm/node-postgres/session');
  return (db, connection, lease) => {
    const { dialect, session } = db as unknown as DrizzleInternals;
    const pgClient = (connection as PgFenceConnection).client;
    // Only `query` is what Drizzle's node-postgres session uses of a checked-out client.
    const client = {
      query: (...args: unknown[]) => {
        lease.check();
        return (pgClient.query as (...a: unknown[]) => unknown)(...args);
      },
    };
    const fenced = new NodePgSession(client as never, dialect as never, session.schema as never, session.options as never);
    return new NodePgTransaction(dialect as never, fenced, session.schema as never);
  };
}

async function postgresJs(): Promise<Bind> {
  const { PostgresJsSession, PostgresJsTransaction } = await import('drizzle-orm/postgres-js/session');
  return (db, connection, lease) => {
    const { dialect, session } = db as unknown as DrizzleInternals;
    // The fenced postgres.js handle nests with savepoint(), which is what Drizzle's nested
    // transaction calls.
    const sql = fencedSql((connection as PostgresJsFenceConnection).sql, lease);
    const fenced = new PostgresJsSession(sql as never, dialect as never, session.schema as never, session.options as never);
    return new PostgresJsTransaction(dialect as never, fenced, session.schema as never);
  };
}
