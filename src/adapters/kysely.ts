/**
 * Kysely binding of the fence engine: `withTenant(pool, tenant, async (db) => …)` where `pool` is a
 * node-postgres pool or a postgres.js instance, and `db` is a `Kysely<DB>` whose only connection is
 * the fenced one. Kysely's driver seam does the work: a `Driver` whose connection is the engine's
 * `FenceConnection`, and whose transactions are savepoints, so `db.transaction()` and
 * `db.startTransaction()` nest inside the fence instead of ending it. Isolation levels and access
 * modes cannot change inside a transaction: asking for one is refused (`TF_USAGE`).
 */
import {
  CompiledQuery,
  Kysely,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  sql,
  type DatabaseConnection,
  type Driver,
  type KyselyPlugin,
  type QueryCompiler,
  type QueryResult,
  type TransactionSettings,
} from 'kysely';
import { TenantfenceError, ErrorCodes } from '../errors.ts';
import { runFenced, type FenceConnection, type FenceOptions } from '../context/fence.ts';
import { connect, type PgPoolLike } from './pg.ts';
import { reserve, type PostgresJsSql } from './postgres-js.ts';
import { Lease, tenantArguments } from './lease.ts';

export interface WithTenantOptions extends FenceOptions {
  /** Kysely plugins for the fenced instance (CamelCasePlugin, …), as you give them to `new Kysely`. */
  readonly plugins?: KyselyPlugin[];
}

/** A node-postgres pool, or a postgres.js instance created with `{ prepare: false }`. */
export type KyselyPool = PgPoolLike | PostgresJsSql;

export function withTenant<DB, T>(pool: KyselyPool, tenant: string, fn: (db: Kysely<DB>) => Promise<T>, options?: WithTenantOptions): Promise<T>;
export function withTenant<DB, T>(pool: KyselyPool, fn: (db: Kysely<DB>) => Promise<T>, options?: WithTenantOptions): Promise<T>;
export function withTenant<DB, T>(
  pool: KyselyPool,
  tenantOrFn: string | ((db: Kysely<DB>) => Promise<T>),
  fnOrOptions?: ((db: Kysely<DB>) => Promise<T>) | WithTenantOptions,
  maybeOptions?: WithTenantOptions,
): Promise<T> {
  const [tenant, fn, options] = tenantArguments(tenantOrFn, fnOrOptions, maybeOptions);
  const acquire = 'reserve' in pool ? () => reserve(pool) : () => connect(pool);
  return runFenced(acquire, tenant, async (c) => {
    const driver = new FencedDriver(c);
    try {
      return await fn(
        new Kysely<DB>({
          dialect: {
            createAdapter: () => new PostgresAdapter(),
            createDriver: () => driver,
            createIntrospector: (db) => new PostgresIntrospector(db),
            createQueryCompiler: () => new PostgresQueryCompiler(),
          },
          ...(options?.plugins ? { plugins: options.plugins } : {}),
        }),
      );
    } finally {
      driver.lease.end();
    }
  }, options);
}

/** One fenced connection, lent to one Kysely operation at a time. */
class FencedDriver implements Driver {
  readonly lease = new Lease();
  readonly #connection: FencedConnection;
  /** Each transaction is a savepoint; the innermost name is last. */
  readonly #savepoints: string[] = [];
  #next = 0;
  // Kysely runs a transaction's queries on the connection it acquired; a query from outside the
  // transaction must wait for it, or it would land inside the savepoint.
  #queue: Promise<void> = Promise.resolve();
  #free: (() => void) | undefined;

  constructor(connection: FenceConnection) {
    this.#connection = new FencedConnection(connection, this.lease);
  }

  async init(): Promise<void> {}

  async acquireConnection(): Promise<DatabaseConnection> {
    this.lease.check();
    const previous = this.#queue;
    let free!: () => void;
    this.#queue = new Promise((resolve) => (free = resolve));
    await previous;
    this.#free = free;
    return this.#connection;
  }

  async releaseConnection(): Promise<void> {
    const free = this.#free;
    this.#free = undefined;
    free?.();
  }

  async beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    if (settings.isolationLevel || settings.accessMode) {
      throw new TenantfenceError(ErrorCodes.USAGE, 'A transaction inside withTenant is a savepoint and cannot set an isolation level or access mode; pass readOnly to withTenant instead.');
    }
    const name = `tf_sp_${++this.#next}`;
    await connection.executeQuery(CompiledQuery.raw(`SAVEPOINT ${name}`));
    this.#savepoints.push(name);
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw(`RELEASE SAVEPOINT ${this.#savepoints.pop()}`));
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    const name = this.#savepoints.pop();
    await connection.executeQuery(CompiledQuery.raw(`ROLLBACK TO SAVEPOINT ${name}`));
    await connection.executeQuery(CompiledQuery.raw(`RELEASE SAVEPOINT ${name}`));
  }

  // Named savepoints inside a controlled transaction (`trx.savepoint('x')`), quoted by Kysely.
  async savepoint(connection: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']): Promise<void> {
    await connection.executeQuery(compile(sql`savepoint ${sql.id(name)}`.toOperationNode(), { queryId: 'tenantfence' }));
  }

  async rollbackToSavepoint(connection: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']): Promise<void> {
    await connection.executeQuery(compile(sql`rollback to savepoint ${sql.id(name)}`.toOperationNode(), { queryId: 'tenantfence' }));
  }

  async releaseSavepoint(connection: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']): Promise<void> {
    await connection.executeQuery(compile(sql`release savepoint ${sql.id(name)}`.toOperationNode(), { queryId: 'tenantfence' }));
  }

  /** The engine owns the connection: Kysely's destroy() has nothing to close. */
  async destroy(): Promise<void> {}
}

class FencedConnection implements DatabaseConnection {
  readonly #c: FenceConnection;
  readonly #lease: Lease;

  constructor(connection: FenceConnection, lease: Lease) {
    this.#c = connection;
    this.#lease = lease;
  }

  async executeQuery<R>(compiled: CompiledQuery): Promise<QueryResult<R>> {
    this.#lease.check();
    const r = await this.#c.query(compiled.sql, compiled.parameters);
    const changed = r.command === 'INSERT' || r.command === 'UPDATE' || r.command === 'DELETE' || r.command === 'MERGE';
    return { rows: r.rows as R[], ...(changed && r.rowCount !== null ? { numAffectedRows: BigInt(r.rowCount) } : {}) };
  }

  // eslint-disable-next-line require-yield
  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new TenantfenceError(ErrorCodes.USAGE, 'Streaming is not supported inside withTenant; page the query with limit and offset or a keyset.');
  }
}
