/**
 * What each binding costs over the same ORM query without tenantfence, measured in one run
 * (ratios, never asserted in tests).
 *
 *   npm run bench:bindings            (embedded PostgreSQL, or DATABASE_URL)
 *
 * The request is the seed app's "a tenant's latest 20 conversations", one query. Baseline: the
 * ORM's query with an app-layer `WHERE tenant_id = $1` on a copy of the table without RLS, as a
 * role without policies. Fenced: the same ORM query inside the binding's withTenant on the
 * protected table (the WHERE kept, as apps keep it). Both over loopback, the same pool sizes, the
 * variants interleaved in rounds so that drift hits them alike.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import postgres from 'postgres';
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres';
import { drizzle as drizzlePostgresJs } from 'drizzle-orm/postgres-js';
import { bigserial, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import { desc, eq } from 'drizzle-orm';
import { Kysely, PostgresDialect, type Generated } from 'kysely';
import { PrismaPg } from '@prisma/adapter-pg';
import * as pgBinding from '../src/adapters/pg.ts';
import * as postgresJsBinding from '../src/adapters/postgres-js.ts';
import * as drizzleBinding from '../src/adapters/drizzle.ts';
import * as kyselyBinding from '../src/adapters/kysely.ts';
import * as prismaBinding from '../src/adapters/prisma.ts';
import { runWithTenant } from '../src/context/storage.ts';
import { formatSecret, generateKey } from '../src/context/token.ts';
import { openDatabase, urlForDatabase, urlForRole } from '../src/embedded/database.ts';
import { init } from '../src/cli/commands/init.ts';
import { protect } from '../src/cli/commands/protect.ts';
import { SEED_TABLE } from '../src/cli/commands/demo.ts';
import { ident, literal } from '../src/sql/quote.ts';
import { loadPrisma } from '../test/adapters/prisma/client.ts';

const TENANTS = 50;
const ROWS_PER_TENANT = 400;
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 2000);
const ROUNDS = 4;
const CONCURRENCY = 4;

const target = await openDatabase();
const server = new pg.Client(target.url);
await server.connect();
const suffix = randomBytes(4).toString('hex');
const dbName = `tf_bench_${suffix}`;
const roles = { app: `tf_bench_app_${suffix}`, agent: `tf_bench_agent_${suffix}`, plain: `tf_bench_plain_${suffix}`, owner: `tf_bench_owner_${suffix}` };
const password = randomBytes(12).toString('hex');
await server.query(`CREATE DATABASE ${ident(dbName)}`);
const url = urlForDatabase(target.url ?? 'postgres://postgres@127.0.0.1:5432/postgres', dbName);
const admin = new pg.Client(url);
await admin.connect();
const closers: Array<() => Promise<unknown>> = [];
try {
  const key = generateKey('bench');
  await init({ db: admin, appRole: roles.app, agentRole: roles.agent, secret: formatSecret(key) });
  await admin.query(`ALTER ROLE ${ident(roles.app)} PASSWORD ${literal(password)}`);
  await admin.query(`CREATE ROLE ${ident(roles.plain)} LOGIN PASSWORD ${literal(password)}`);
  await admin.query(`CREATE ROLE ${ident(roles.owner)} NOLOGIN`);
  await admin.query(SEED_TABLE);
  await admin.query(SEED_TABLE.replace('conversations', 'conversations_plain'));
  for (const t of ['conversations', 'conversations_plain']) {
    await admin.query(
      `INSERT INTO ${t} (tenant_id, agent_id, transcript, created_at)
       SELECT ('00000000-0000-0000-0000-' || lpad(tn::text, 12, '0'))::uuid, gen_random_uuid(), repeat('x', 80), now() - (r || ' minutes')::interval
         FROM generate_series(1, ${TENANTS}) tn, generate_series(1, ${ROWS_PER_TENANT}) r`,
    );
    await admin.query(`CREATE INDEX ${t}_latest ON ${t} (tenant_id, created_at DESC)`);
  }
  await admin.query(`ALTER TABLE conversations OWNER TO ${ident(roles.owner)}`);
  await admin.query(`GRANT SELECT ON conversations_plain TO ${ident(roles.plain)}`);
  await protect({ db: admin, tables: ['conversations'], appRole: roles.app, agentRole: roles.agent });
  await admin.query('ANALYZE');
  const tenant = '00000000-0000-0000-0000-000000000042';
  console.log(`# ${TENANTS} tenants x ${ROWS_PER_TENANT} rows; ${(await admin.query('SHOW server_version')).rows[0].server_version}; ${target.embedded ? 'embedded' : 'DATABASE_URL'}`);

  const appUrl = urlForRole(url, roles.app, password);
  const plainUrl = urlForRole(url, roles.plain, password);
  const pgPool = (u: string) => {
    const p = new pg.Pool({ connectionString: u, max: CONCURRENCY, pipeline: true } as pg.PoolConfig);
    closers.push(() => p.end());
    return p;
  };
  const pjs = (u: string) => {
    const s = postgres(u, { max: CONCURRENCY, prepare: false });
    closers.push(() => s.end());
    return s;
  };

  // postgres.js
  const pjsPlain = pjs(plainUrl);
  const pjsApp = pjs(appUrl);
  const latestPjs = (s: postgres.Sql<any> | postgresJsBinding.FencedSql, table: string) =>
    s`SELECT id, transcript, created_at FROM ${s(table)} WHERE tenant_id = ${tenant} ORDER BY created_at DESC LIMIT 20`;

  // Drizzle
  const table = (name: string) =>
    pgTable(name, {
      id: bigserial('id', { mode: 'number' }).primaryKey(),
      tenantId: uuid('tenant_id').notNull(),
      agentId: uuid('agent_id').notNull(),
      transcript: text('transcript'),
      createdAt: timestamp('created_at', { withTimezone: true }).defaultNow(),
    });
  const fencedTable = table('conversations');
  const plainTable = table('conversations_plain');
  type AnyDrizzle = ReturnType<typeof drizzlePg>;
  const latestDrizzle = (d: unknown, t: typeof fencedTable) =>
    (d as AnyDrizzle).select({ id: t.id, transcript: t.transcript, createdAt: t.createdAt }).from(t).where(eq(t.tenantId, tenant)).orderBy(desc(t.createdAt)).limit(20);
  const drizzlePgPlain = drizzlePg({ client: pgPool(plainUrl) });
  const drizzlePgApp = drizzlePg({ client: pgPool(appUrl) });
  const drizzlePjsPlain = drizzlePostgresJs({ client: pjs(plainUrl) });
  const drizzlePjsApp = drizzlePostgresJs({ client: pjs(appUrl) });

  // Kysely
  interface Row { id: Generated<string>; tenant_id: string; agent_id: string; transcript: string | null; created_at: Generated<Date> }
  interface Database { conversations: Row; conversations_plain: Row }
  const kyselyPlain = new Kysely<Database>({ dialect: new PostgresDialect({ pool: pgPool(plainUrl) }) });
  const kyselyPool = pgPool(appUrl);
  const latestKysely = (k: Kysely<Database>, t: 'conversations' | 'conversations_plain') =>
    k.selectFrom(t).select(['id', 'transcript', 'created_at']).where('tenant_id', '=', tenant).orderBy('created_at', 'desc').limit(20).execute();

  // Prisma
  const { PrismaClient } = await loadPrisma();
  const prismaPlain = new PrismaClient({ adapter: new PrismaPg(pgPool(plainUrl)) });
  const prismaFenced = new PrismaClient({ adapter: prismaBinding.fencedAdapter(pgPool(appUrl), { key }) });
  const prismaExtended = prismaFenced.$extends(prismaBinding.tenantExtension());
  closers.push(() => prismaPlain.$disconnect(), () => prismaFenced.$disconnect());
  const latestPrisma = (p: any, model: 'conversation' | 'conversationPlain') =>
    p[model].findMany({ where: { tenantId: tenant }, orderBy: { createdAt: 'desc' }, take: 20, select: { id: true, transcript: true, createdAt: true } });

  // node-postgres itself: the engine's cost with no ORM on top, for reading the rows below.
  const pgPlain = pgPool(plainUrl);
  const pgApp = pgPool(appUrl);
  const latestSql = (t: string) => `SELECT id, transcript, created_at FROM ${t} WHERE tenant_id = $1 ORDER BY created_at DESC LIMIT 20`;

  const groups: Array<[string, Array<[string, () => Promise<unknown>]>]> = [
    ['node-postgres (tenantfence/pg, for reference)', [
      ['pool.query() (baseline)', () => pgPlain.query(latestSql('conversations_plain'), [tenant])],
      ['withTenant(pool, t, c => c.query())', () => pgBinding.withTenant(pgApp, tenant, (c) => c.query(latestSql('conversations'), [tenant]), { key })],
    ]],
    ['postgres.js', [
      ['sql`…` (baseline)', () => latestPjs(pjsPlain, 'conversations_plain')],
      ['withTenant(sql, t, sql => sql`…`)', () => postgresJsBinding.withTenant(pjsApp, tenant, (s) => latestPjs(s, 'conversations'), { key })],
    ]],
    ['Drizzle over node-postgres', [
      ['db.select() (baseline)', () => latestDrizzle(drizzlePgPlain, plainTable)],
      ['withTenant(db, t, tx => tx.select())', () => drizzleBinding.withTenant(drizzlePgApp, tenant, (tx) => latestDrizzle(tx, fencedTable), { key })],
    ]],
    ['Drizzle over postgres.js', [
      ['db.select() (baseline)', () => latestDrizzle(drizzlePjsPlain, plainTable)],
      ['withTenant(db, t, tx => tx.select())', () => drizzleBinding.withTenant(drizzlePjsApp, tenant, (tx) => latestDrizzle(tx, fencedTable), { key })],
    ]],
    ['Kysely over node-postgres', [
      ['db.selectFrom() (baseline)', () => latestKysely(kyselyPlain, 'conversations_plain')],
      ['withTenant(pool, t, db => db.selectFrom())', () => kyselyBinding.withTenant<Database, unknown>(kyselyPool, tenant, (k) => latestKysely(k, 'conversations'), { key })],
    ]],
    ['Prisma 7 (adapter-pg)', [
      ['prisma.x.findMany() (baseline)', () => latestPrisma(prismaPlain, 'conversationPlain')],
      ['withTenant(prisma, t, tx => tx.x.findMany())', () => prismaBinding.withTenant(prismaFenced, tenant, (tx: any) => latestPrisma(tx, 'conversation'))],
      ['extension: prisma.x.findMany() in the request', () => runWithTenant(tenant, async () => await latestPrisma(prismaExtended, 'conversation'))],
    ]],
  ];

  const measure = async (fn: () => Promise<unknown>, n: number, lat: number[]) => {
    let next = 0;
    const t0 = process.hrtime.bigint();
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      while (next++ < n) {
        const s = process.hrtime.bigint();
        await fn();
        lat.push(Number(process.hrtime.bigint() - s) / 1000);
      }
    }));
    return Number(process.hrtime.bigint() - t0) / 1e9;
  };

  console.log(`\n## one request = one ORM query; ${REQUESTS} requests per variant in ${ROUNDS} interleaved rounds, concurrency ${CONCURRENCY}, loopback`);
  for (const [group, variants] of groups) {
    for (const [, fn] of variants) for (let i = 0; i < 200; i++) await fn(); // warm
    const stats = variants.map(() => ({ lat: [] as number[], secs: 0 }));
    for (let round = 0; round < ROUNDS; round++) {
      for (const [i, [, fn]] of variants.entries()) stats[i]!.secs += await measure(fn, REQUESTS / ROUNDS, stats[i]!.lat);
    }
    console.log(`\n### ${group}`);
    let base: { p50: number; rps: number } | undefined;
    for (const [i, [name]] of variants.entries()) {
      const { lat, secs } = stats[i]!;
      lat.sort((a, b) => a - b);
      const r = { p50: lat[Math.floor(lat.length * 0.5)]!, p99: lat[Math.floor(lat.length * 0.99)]!, rps: REQUESTS / secs };
      base ??= r;
      console.log(`${name.padEnd(48)} p50 ${r.p50.toFixed(0).padStart(5)} µs (${(r.p50 / base.p50).toFixed(2)}x)  p99 ${r.p99.toFixed(0).padStart(5)} µs  ${r.rps.toFixed(0).padStart(6)} req/s (${(r.rps / base.rps).toFixed(2)}x)`);
    }
  }
} finally {
  for (const close of closers) await close().catch(() => undefined);
  await admin.end();
  await server.query(`DROP DATABASE IF EXISTS ${ident(dbName)} WITH (FORCE)`);
  for (const r of Object.values(roles)) await server.query(`DROP ROLE IF EXISTS ${ident(r)}`).catch(() => undefined);
  await server.end();
  await target.close();
}
