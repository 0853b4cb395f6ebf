/**
 * Every binding, described the same way so that one isolation suite runs over all of them (the way
 * Kysely runs its tests over dialects). A binding opens connections to an endpoint (the test
 * database as the app role, or PgBouncer in front of it) and offers the same few operations, once
 * inside a fence and once on the plain driver with no fence at all.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import postgres from 'postgres';
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres';
import { drizzle as drizzlePostgresJs } from 'drizzle-orm/postgres-js';
import { bigserial, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import { asc, eq } from 'drizzle-orm';
import { ControlledTransaction, Kysely, PostgresDialect, type Generated } from 'kysely';
import * as postgresJsBinding from '../../src/adapters/postgres-js.ts';
import * as drizzleBinding from '../../src/adapters/drizzle.ts';
import * as kyselyBinding from '../../src/adapters/kysely.ts';
import * as prismaBinding from '../../src/adapters/prisma.ts';
import { PrismaPg } from '@prisma/adapter-pg';
import { loadPrisma } from './prisma/client.ts';
import type { SigningKey } from '../../src/context/token.ts';

export interface Row {
  readonly id: string;
  readonly tenant_id: string;
  readonly transcript: string | null;
}

/** What the suite does with a database handle, whichever binding made it. */
export interface Ops {
  list(): Promise<Row[]>;
  insert(tenant: string, transcript: string): Promise<void>;
  /** Rows whose transcript was `from` now read `to`; the number changed. */
  update(from: string, to: string): Promise<number>;
  remove(transcript: string): Promise<number>;
  /** The ORM's own transaction() (or the driver's savepoint()) around `fn`. */
  nested<T>(fn: (ops: Ops) => Promise<T>): Promise<T>;
}

export interface Harness {
  /** `tenant` undefined: the binding takes it from the request context. */
  run<T>(tenant: string | undefined, fn: (ops: Ops) => Promise<T>): Promise<T>;
  /** The same driver or ORM with no fence: what an app that forgot withTenant would get. */
  readonly unfenced: Omit<Ops, 'nested'>;
  close(): Promise<void>;
}

export interface Binding {
  readonly name: string;
  open(url: string, key: SigningKey): Harness | Promise<Harness>;
}

const postgresJs = (url: string) => postgres(url, { prepare: false, max: 4, onnotice: () => undefined });
const pgPool = (url: string) => {
  const pool = new pg.Pool({ connectionString: url, max: 4, pipeline: true } as pg.PoolConfig);
  pool.on('error', () => undefined);
  return pool;
};

function sqlOps(sql: postgres.Sql<any> | postgresJsBinding.FencedSql): Ops {
  return {
    list: async () => [...(await sql<Row[]>`SELECT id::text, tenant_id::text, transcript FROM conversations ORDER BY id`)],
    insert: async (tenant, transcript) => void (await sql`INSERT INTO conversations (tenant_id, agent_id, transcript) VALUES (${tenant}, ${randomUUID()}, ${transcript})`),
    update: async (from, to) => (await sql`UPDATE conversations SET transcript = ${to} WHERE transcript = ${from}`).count,
    remove: async (transcript) => (await sql`DELETE FROM conversations WHERE transcript = ${transcript}`).count,
    nested: (fn) => (sql as postgresJsBinding.FencedSql).savepoint((inner) => fn(sqlOps(inner))) as Promise<never>,
  };
}

const conversations = pgTable('conversations', {
  id: bigserial('id', { mode: 'number' }).primaryKey(),
  tenantId: uuid('tenant_id').notNull(),
  agentId: uuid('agent_id').notNull(),
  transcript: text('transcript'),
  createdAt: timestamp('created_at', { withTimezone: true }).defaultNow(),
});

type DrizzleDb = ReturnType<typeof drizzlePg> | ReturnType<typeof drizzlePostgresJs>;

function drizzleOps(db: DrizzleDb): Ops {
  const d = db as ReturnType<typeof drizzlePg>;
  return {
    list: async () =>
      (await d.select({ id: conversations.id, tenantId: conversations.tenantId, transcript: conversations.transcript }).from(conversations).orderBy(asc(conversations.id))).map(
        (r) => ({ id: String(r.id), tenant_id: r.tenantId, transcript: r.transcript }),
      ),
    insert: async (tenant, transcript) => void (await d.insert(conversations).values({ tenantId: tenant, agentId: randomUUID(), transcript })),
    update: async (from, to) => (await d.update(conversations).set({ transcript: to }).where(eq(conversations.transcript, from)).returning({ id: conversations.id })).length,
    remove: async (transcript) => (await d.delete(conversations).where(eq(conversations.transcript, transcript)).returning({ id: conversations.id })).length,
    nested: (fn) => d.transaction((tx) => fn(drizzleOps(tx as unknown as DrizzleDb))),
  };
}

interface Database {
  conversations: { id: Generated<string>; tenant_id: string; agent_id: string; transcript: string | null; created_at: Generated<Date> };
}

let savepointNames = 0;

/**
 * Kysely nests through controlled transactions: `startTransaction()` at the top, `savepoint()`
 * below it (its callback `transaction()` refuses to nest, by Kysely's design). Both reach the
 * driver's transaction and savepoint calls, which inside the fence are savepoints.
 */
async function kyselyNested<T>(db: Kysely<Database>, fn: (ops: Ops) => Promise<T>): Promise<T> {
  if (db instanceof ControlledTransaction) {
    const name = `s${++savepointNames}`;
    const sp = await (db as ControlledTransaction<Database, string[]>).savepoint(name).execute();
    try {
      const result = await fn(kyselyOps(sp as unknown as Kysely<Database>));
      await (sp as any).releaseSavepoint(name).execute();
      return result;
    } catch (error) {
      await (sp as any).rollbackToSavepoint(name).execute();
      throw error;
    }
  }
  const trx = await db.startTransaction().execute();
  try {
    const result = await fn(kyselyOps(trx as unknown as Kysely<Database>));
    await trx.commit().execute();
    return result;
  } catch (error) {
    await trx.rollback().execute();
    throw error;
  }
}

function kyselyOps(db: Kysely<Database>): Ops {
  return {
    list: async () =>
      (await db.selectFrom('conversations').select(['id', 'tenant_id', 'transcript']).orderBy('id').execute()).map((r) => ({ id: String(r.id), tenant_id: r.tenant_id, transcript: r.transcript })),
    insert: async (tenant, transcript) => void (await db.insertInto('conversations').values({ tenant_id: tenant, agent_id: randomUUID(), transcript }).execute()),
    update: async (from, to) => Number((await db.updateTable('conversations').set({ transcript: to }).where('transcript', '=', from).executeTakeFirst()).numUpdatedRows),
    remove: async (transcript) => Number((await db.deleteFrom('conversations').where('transcript', '=', transcript).executeTakeFirst()).numDeletedRows),
    nested: (fn) => kyselyNested(db, fn),
  };
}

export const bindings: Binding[] = [
  {
    name: 'postgres-js',
    open(url, key) {
      const sql = postgresJs(url);
      return {
        run: (tenant, fn) => (tenant === undefined ? postgresJsBinding.withTenant(sql, (s) => fn(sqlOps(s)), { key }) : postgresJsBinding.withTenant(sql, tenant, (s) => fn(sqlOps(s)), { key })),
        unfenced: sqlOps(sql),
        close: () => sql.end(),
      };
    },
  },
  ...(['node-postgres', 'postgres-js'] as const).map((driver): Binding => ({
    name: `drizzle over ${driver}`,
    open(url, key) {
      const client = driver === 'node-postgres' ? pgPool(url) : postgresJs(url);
      const db: DrizzleDb = driver === 'node-postgres' ? drizzlePg({ client: client as pg.Pool }) : drizzlePostgresJs({ client: client as postgres.Sql });
      const run = (tx: unknown, fn: (ops: Ops) => Promise<never>) => fn(drizzleOps(tx as DrizzleDb));
      return {
        run: (tenant, fn) =>
          tenant === undefined ? drizzleBinding.withTenant(db, (tx) => run(tx, fn as never), { key }) : drizzleBinding.withTenant(db, tenant, (tx) => run(tx, fn as never), { key }),
        unfenced: drizzleOps(db),
        close: async () => void (await ('end' in client ? client.end() : undefined)),
      };
    },
  })),
  ...(['node-postgres', 'postgres-js'] as const).map((driver): Binding => ({
    name: `kysely over ${driver}`,
    open(url, key) {
      const pool = driver === 'node-postgres' ? pgPool(url) : postgresJs(url);
      const plainPool = pgPool(url);
      const plain = new Kysely<Database>({ dialect: new PostgresDialect({ pool: plainPool }) });
      return {
        run: (tenant, fn) =>
          tenant === undefined
            ? kyselyBinding.withTenant<Database, never>(pool, (db) => fn(kyselyOps(db)) as Promise<never>, { key })
            : kyselyBinding.withTenant<Database, never>(pool, tenant, (db) => fn(kyselyOps(db)) as Promise<never>, { key }),
        unfenced: kyselyOps(plain),
        close: async () => {
          await plain.destroy();
          await pool.end();
        },
      };
    },
  })),
];

/** Prisma's client is generated at test time, so it is typed loosely here. */
function prismaOps(tx: any): Ops {
  return {
    list: async () =>
      ((await tx.conversation.findMany({ orderBy: { id: 'asc' }, select: { id: true, tenantId: true, transcript: true } })) as Array<{ id: bigint; tenantId: string; transcript: string | null }>).map(
        (r) => ({ id: String(r.id), tenant_id: r.tenantId, transcript: r.transcript }),
      ),
    insert: async (tenant, transcript) => void (await tx.conversation.create({ data: { tenantId: tenant, agentId: randomUUID(), transcript } })),
    update: async (from, to) => (await tx.conversation.updateMany({ where: { transcript: from }, data: { transcript: to } })).count,
    remove: async (transcript) => (await tx.conversation.deleteMany({ where: { transcript } })).count,
    nested: (fn) => tx.$transaction((inner: unknown) => fn(prismaOps(inner))),
  };
}

bindings.push({
  name: 'prisma',
  async open(url, key) {
    const { PrismaClient } = await loadPrisma();
    const pool = pgPool(url);
    const plainPool = pgPool(url);
    const prisma = new PrismaClient({ adapter: prismaBinding.fencedAdapter(pool, { key }) });
    const plain = new PrismaClient({ adapter: new PrismaPg(plainPool) });
    const waits = { maxWait: 60_000, timeout: 60_000 };
    return {
      // Hundreds of transactions queue for four connections: Prisma's default 2 s wait is too short.
      run: (tenant, fn) =>
        tenant === undefined
          ? prismaBinding.withTenant(prisma, (tx) => fn(prismaOps(tx)), waits)
          : prismaBinding.withTenant(prisma, tenant, (tx) => fn(prismaOps(tx)), waits),
      unfenced: prismaOps(plain),
      close: async () => {
        await prisma.$disconnect();
        await plain.$disconnect();
        await pool.end();
        await plainPool.end();
      },
    };
  },
});
