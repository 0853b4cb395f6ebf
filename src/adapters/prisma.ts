/**
 * Prisma 7 binding of the fence engine, over `@prisma/adapter-pg`:
 *
 *   const prisma = new PrismaClient({ adapter: fencedAdapter(pool) }).$extends(tenantExtension());
 *   await withTenant(prisma, tenant, async (tx) => tx.conversation.findMany());
 *
 * Prisma drives transactions through its driver adapter, so the fence sits there: every
 * transaction Prisma starts (interactive or batch) is the engine's fenced transaction for the
 * tenant of the calling request (`runWithTenant`, the HTTP middleware, or `withTenant`), and
 * Prisma's COMMIT and ROLLBACK become the engine's end (commit or rollback plus the session reset,
 * one message). Prisma's nested `$transaction` uses savepoints on that same connection.
 *
 * A query Prisma sends outside a transaction is refused (`TF_NO_TENANT`), never run without a
 * context. `tenantExtension()` wraps each single call in its own fenced transaction, and leaves
 * calls that already run inside a transaction alone: Prisma's own RLS example opens a new
 * transaction for every call, so queries in an interactive transaction escape into transactions
 * of their own, outside it. One transaction per call also keeps Prisma from batching two
 * requests' `findUnique` calls into one query under one tenant's context.
 */
import { PrismaPg } from '@prisma/adapter-pg';
import { Prisma } from '@prisma/client/extension';
import type { IsolationLevel, SqlDriverAdapter, SqlDriverAdapterFactory, SqlQuery, Transaction } from '@prisma/driver-adapter-utils';
import { TenantfenceError, ErrorCodes } from '../errors.ts';
import { getTenant, runWithTenant } from '../context/storage.ts';
import { resolveTenant, runFenced, type FenceOptions } from '../context/fence.ts';
import { connect, type PgFenceConnection, type PgPoolLike } from './pg.ts';
import { Lease, tenantArguments } from './lease.ts';

/** Prisma's options for `$transaction(fn, options)`. */
export interface TransactionOptions {
  readonly maxWait?: number;
  readonly timeout?: number;
}

interface PrismaLike {
  $transaction(...args: any[]): Promise<unknown>;
}

/** What `prisma.$transaction(async (tx) => …)` passes its callback, for this client. */
export type TenantTransaction<P extends PrismaLike> = Parameters<Extract<Parameters<P['$transaction']>[0], (...args: any[]) => unknown>>[0];

/**
 * Runs `fn(tx)` in a Prisma interactive transaction that is the fenced transaction for `tenant`
 * (or the request's tenant when omitted). The client must use `fencedAdapter`.
 */
export function withTenant<P extends PrismaLike, T>(prisma: P, tenant: string, fn: (tx: TenantTransaction<P>) => Promise<T>, options?: TransactionOptions): Promise<T>;
export function withTenant<P extends PrismaLike, T>(prisma: P, fn: (tx: TenantTransaction<P>) => Promise<T>, options?: TransactionOptions): Promise<T>;
export async function withTenant<P extends PrismaLike, T>(
  prisma: P,
  tenantOrFn: string | ((tx: TenantTransaction<P>) => Promise<T>),
  fnOrOptions?: ((tx: TenantTransaction<P>) => Promise<T>) | TransactionOptions,
  maybeOptions?: TransactionOptions,
): Promise<T> {
  const [tenant, fn, options] = tenantArguments(tenantOrFn, fnOrOptions, maybeOptions);
  const id = resolveTenant(tenant);
  // Awaited inside the context: a Prisma promise starts when it is awaited, not when it is made.
  return runWithTenant(id, async () => (await prisma.$transaction((tx: TenantTransaction<P>) => fn(tx), options)) as T);
}

/**
 * A client extension: each model call made outside a transaction runs in a fenced transaction of
 * its own; calls inside `withTenant` or an explicit `$transaction` run in that transaction.
 */
export function tenantExtension() {
  return Prisma.defineExtension((client) =>
    client.$extends({
      name: 'tenantfence',
      query: {
        $allModels: {
          $allOperations(params) {
            const { model, operation, args, query } = params;
            // Prisma hands an extension the request it is running; a request that belongs to a
            // transaction already carries it there.
            if ((params as { __internalParams?: { transaction?: unknown } }).__internalParams?.transaction) return query(args);
            const delegate = model.charAt(0).toLowerCase() + model.slice(1);
            return client.$transaction((tx) => (tx as unknown as Record<string, Record<string, (a: unknown) => Promise<unknown>>>)[delegate]![operation]!(args));
          },
        },
      },
    }),
  );
}

/** A driver adapter factory for `new PrismaClient({ adapter })`: `@prisma/adapter-pg` over `pool`, fenced. */
export function fencedAdapter(pool: PgPoolLike, options: FenceOptions = {}): SqlDriverAdapterFactory {
  const inner = new PrismaPg(pool as never);
  return {
    provider: inner.provider,
    adapterName: `${inner.adapterName}+tenantfence`,
    async connect() {
      return fenced(await inner.connect(), pool, options);
    },
  };
}

function fenced(base: SqlDriverAdapter, pool: PgPoolLike, options: FenceOptions): SqlDriverAdapter {
  const outside = async (): Promise<never> => {
    throw new TenantfenceError(ErrorCodes.NO_TENANT, 'A Prisma query ran outside a fenced transaction; run it inside withTenant(prisma, …) or add tenantExtension() to the client.');
  };
  return {
    provider: base.provider,
    adapterName: base.adapterName,
    queryRaw: outside,
    executeRaw: outside,
    executeScript: outside,
    getConnectionInfo: () => base.getConnectionInfo?.() ?? { supportsRelationJoins: true },
    dispose: () => base.dispose(),
    startTransaction: (isolationLevel?: IsolationLevel) => startFenced(base, pool, options, isolationLevel),
  };
}

/**
 * Opens the engine's fence and hands Prisma a Transaction on its connection; the fence stays open
 * until Prisma calls commit() or rollback(), which end it through the engine.
 */
function startFenced(base: SqlDriverAdapter, pool: PgPoolLike, options: FenceOptions, isolationLevel: IsolationLevel | undefined): Promise<Transaction> {
  if (isolationLevel && isolationLevel !== 'READ COMMITTED') {
    throw new TenantfenceError(ErrorCodes.USAGE, 'A fenced transaction runs at READ COMMITTED; leave out isolationLevel in $transaction.');
  }
  const tenant = getTenant();
  return new Promise<Transaction>((opened, failed) => {
    let finish!: (outcome: 'commit' | 'rollback') => Promise<void>;
    const ended = runFenced(() => connect(pool), tenant, (c) => {
      const lease = new Lease();
      const client = (c as PgFenceConnection).client;
      // adapter-pg's own query code (argument mapping, result types) over the fenced client.
      const queries = Object.create(base, {
        client: {
          value: {
            query: (...args: unknown[]) => {
              lease.check();
              return (client.query as (...a: unknown[]) => unknown)(...args);
            },
          },
        },
      }) as SqlDriverAdapter;
      return new Promise<void>((commit, rollback) => {
        finish = (outcome) => {
          lease.end();
          if (outcome === 'commit') commit();
          else rollback(ROLLBACK);
          return ended.catch((error: unknown) => {
            if (error !== ROLLBACK) throw error;
          });
        };
        const savepoint = (sql: string) => async (name: string) => {
          if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(name)) throw new TenantfenceError(ErrorCodes.INTERNAL, 'Prisma asked for a savepoint with an unexpected name; report this as a tenantfence bug.');
          await queries.executeRaw({ sql: `${sql} ${name}`, args: [], argTypes: [] });
        };
        opened({
          provider: base.provider,
          adapterName: base.adapterName,
          // Prisma sends no COMMIT or ROLLBACK of its own: the engine ends the transaction.
          options: { usePhantomQuery: true },
          queryRaw: (q: SqlQuery) => queries.queryRaw(q),
          executeRaw: (q: SqlQuery) => queries.executeRaw(q),
          commit: () => finish('commit'),
          rollback: () => finish('rollback'),
          createSavepoint: savepoint('SAVEPOINT'),
          rollbackToSavepoint: savepoint('ROLLBACK TO SAVEPOINT'),
          releaseSavepoint: savepoint('RELEASE SAVEPOINT'),
        });
      });
    }, options);
    // Fails before the transaction was handed over: no connection, a bad key, a failed BEGIN.
    ended.catch(failed);
  });
}

/** The reason a fence ends in ROLLBACK because Prisma asked for it; not an error to report. */
const ROLLBACK = new Error('rolled back by Prisma');
