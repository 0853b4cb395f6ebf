/**
 * What each binding does about the ways out of a fence: the driver's or ORM's own transaction
 * control, SQL that commits, a handle kept past the callback, and options the fence cannot honour.
 * Judged on the rows afterwards where rows are at stake.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import postgres from 'postgres';
import { drizzle } from 'drizzle-orm/node-postgres';
import { sql as dsql } from 'drizzle-orm';
import { sql as ksql, type Kysely } from 'kysely';
import * as postgresJs from '../../src/adapters/postgres-js.ts';
import * as drizzleBinding from '../../src/adapters/drizzle.ts';
import * as kysely from '../../src/adapters/kysely.ts';
import * as prismaBinding from '../../src/adapters/prisma.ts';
import { runWithTenant } from '../../src/context/storage.ts';
import { loadPrisma } from './prisma/client.ts';
import { urlForRole } from '../../src/embedded/database.ts';
import { createTestDatabase, installFence, rowsOf, TENANT_A, TENANT_B, type Fenced, type TestDatabase } from '../support/db.ts';

let db: TestDatabase;
let fence: Fenced;
let url: string;
before(async () => {
  db = await createTestDatabase();
  fence = await installFence(db);
  url = urlForRole(db.url, db.roles.app, db.password);
});
after(async () => {
  await db.drop();
});

const insert = `INSERT INTO conversations (tenant_id, agent_id, transcript) VALUES ('${TENANT_A}', '${randomUUID()}', $1)`;
const transcripts = async () => (await rowsOf(db, TENANT_A)).map((r) => r.transcript);

test('postgres.js: begin/release/end refused inside, COMMIT leaks nothing, stale handle refused, prepare must be off', async () => {
  const sql = postgres(url, { prepare: false, max: 2, onnotice: () => undefined });
  try {
    const key = fence.key;
    let kept: postgresJs.FencedSql | undefined;
    await postgresJs.withTenant(sql, TENANT_A, async (s) => {
      kept = s;
      assert.throws(() => (s as unknown as postgres.Sql).begin(async () => undefined), { code: 'TF_USAGE' });
      assert.throws(() => (s as unknown as postgres.ReservedSql).release(), { code: 'TF_USAGE' });
      assert.throws(() => (s as unknown as postgres.Sql).end(), { code: 'TF_USAGE' });
      await s.unsafe(insert, ['pjs kept']);
    }, { key });
    assert.throws(() => kept!`SELECT 1`, { code: 'TF_USAGE' });
    assert.ok((await transcripts()).includes('pjs kept'));

    await assert.rejects(
      postgresJs.withTenant(sql, TENANT_A, async (s) => {
        await s.unsafe('COMMIT');
        await s.unsafe(insert, ['pjs after commit']);
      }, { key }),
      (e) => (e as { code?: string }).code === 'TF_FENCE_BROKEN' || (e as { code?: string }).code === '42501',
    );
    assert.ok(!(await transcripts()).includes('pjs after commit'));

    const prepared = postgres(url, { max: 1 });
    await assert.rejects(postgresJs.withTenant(prepared, TENANT_A, async () => undefined, { key }), { code: 'TF_USAGE' });
    await prepared.end();
  } finally {
    await sql.end();
  }
});

test('postgres.js: a connection the fence gives up on is scrubbed before anyone reuses it', async () => {
  const sql = postgres(url, { prepare: false, max: 1, onnotice: () => undefined });
  try {
    // SQL ends the fenced transaction and leaves session state behind: the call fails, and the
    // one connection of this pool must come back clean.
    await assert.rejects(
      postgresJs.withTenant(sql, TENANT_A, async (s) => {
        await s.unsafe('COMMIT');
        await s.unsafe("SELECT set_config('app.left_behind', 'yes', false)");
        await s.unsafe('PREPARE left_behind AS SELECT 1');
      }, { key: fence.key }),
      { code: 'TF_FENCE_BROKEN' },
    );
    const next = await postgresJs.withTenant(sql, TENANT_A, async (s) => {
      const [state] = await s<{ setting: string | null; prepared: number; n: number }[]>`
        SELECT current_setting('app.left_behind', true) AS setting,
               (SELECT count(*)::int FROM pg_prepared_statements) AS prepared,
               (SELECT count(*)::int FROM conversations) AS n`;
      return state!;
    }, { key: fence.key });
    assert.ok(next.setting === null || next.setting === '', 'the session setting is gone');
    assert.equal(next.prepared, 0);
    assert.ok(next.n >= 3);
  } finally {
    await sql.end();
  }
});

test('drizzle: tx.rollback() undoes the fence, raw COMMIT breaks it loudly, stale tx refused', async () => {
  const pool = db.pool(db.roles.app, { pipeline: true } as never);
  const d = drizzle({ client: pool });
  const key = fence.key;
  await assert.rejects(
    drizzleBinding.withTenant(d, TENANT_A, async (tx) => {
      await tx.execute(dsql`INSERT INTO conversations (tenant_id, agent_id, transcript) VALUES (${TENANT_A}, ${randomUUID()}, 'drizzle rolled back')`);
      tx.rollback();
    }, { key }),
    /Rollback/i,
  );
  assert.ok(!(await transcripts()).includes('drizzle rolled back'));

  await assert.rejects(
    drizzleBinding.withTenant(d, TENANT_A, async (tx) => {
      await tx.execute(dsql`COMMIT`);
      return tx.execute(dsql`SELECT count(*) FROM conversations`);
    }, { key }),
    { code: 'TF_FENCE_BROKEN' },
  );

  let kept: unknown;
  await drizzleBinding.withTenant(d, TENANT_A, async (tx) => {
    kept = tx;
  }, { key });
  await assert.rejects((kept as typeof d).execute(dsql`SELECT 1`), (e) => /withTenant call that has ended/.test(String((e as Error).cause ?? e)) || (e as { code?: string }).code === 'TF_USAGE');
});

test('kysely: transaction() commits or rolls back its savepoint; isolation levels and stale handles refused', async () => {
  const pool = db.pool(db.roles.app, { pipeline: true } as never);
  const key = fence.key;
  let kept: Kysely<any> | undefined;
  const seen = await kysely.withTenant<any, string[]>(pool, TENANT_A, async (k) => {
    kept = k;
    await k.transaction().execute((trx) => ksql`INSERT INTO conversations (tenant_id, agent_id, transcript) VALUES (${TENANT_A}, ${randomUUID()}, 'kysely kept')`.execute(trx));
    await assert.rejects(
      k.transaction().execute(async (trx) => {
        await ksql`INSERT INTO conversations (tenant_id, agent_id, transcript) VALUES (${TENANT_A}, ${randomUUID()}, 'kysely rolled back')`.execute(trx);
        throw new Error('inner');
      }),
      /inner/,
    );
    await assert.rejects(k.transaction().setIsolationLevel('serializable').execute(async () => undefined), { code: 'TF_USAGE' });
    const { rows } = await ksql<{ transcript: string }>`SELECT transcript FROM conversations`.execute(k);
    return rows.map((r) => r.transcript);
  }, { key });
  assert.ok(seen.includes('kysely kept') && !seen.includes('kysely rolled back'));
  const after = await transcripts();
  assert.ok(after.includes('kysely kept') && !after.includes('kysely rolled back'));
  await assert.rejects(ksql`SELECT 1`.execute(kept!), { code: 'TF_USAGE' });

  await assert.rejects(
    kysely.withTenant(pool, TENANT_A, async (k) => {
      await ksql`COMMIT`.execute(k);
      await ksql`SELECT 1`.execute(k);
    }, { key }),
    { code: 'TF_FENCE_BROKEN' },
  );
});

test('prisma: single calls need the extension; it fences each call and leaves transactions alone; no batching across tenants', async () => {
  const { PrismaClient } = await loadPrisma();
  const pool = db.pool(db.roles.app, { pipeline: true } as never);
  const base = new PrismaClient({ adapter: prismaBinding.fencedAdapter(pool, { key: fence.key }) });
  const prisma = base.$extends(prismaBinding.tenantExtension());
  try {
    // Without the extension a single call is refused, never run without a context.
    await assert.rejects(runWithTenant(TENANT_A, async () => await base.conversation.findMany()), { code: 'TF_NO_TENANT' });
    await assert.rejects(prisma.conversation.findMany(), { code: 'TF_NO_TENANT' });
    // Prisma's promises are lazy: they start when awaited, so the await belongs inside the context.
    const mine = await runWithTenant(TENANT_A, async () => await prisma.conversation.findMany());
    assert.deepEqual([...new Set(mine.map((r: { tenantId: string }) => r.tenantId))], [TENANT_A]);

    // Calls inside withTenant and inside an explicit $transaction stay in that transaction.
    for (const run of [
      () => prismaBinding.withTenant(prisma, TENANT_A, async (tx: any) => {
        await tx.conversation.create({ data: { tenantId: TENANT_A, agentId: randomUUID(), transcript: 'prisma rolled back' } });
        throw new Error('handler failed');
      }),
      () => runWithTenant(TENANT_A, async () => await prisma.$transaction(async (tx: any) => {
        await tx.conversation.create({ data: { tenantId: TENANT_A, agentId: randomUUID(), transcript: 'prisma rolled back' } });
        throw new Error('handler failed');
      })),
    ]) {
      await assert.rejects(run(), /handler failed/);
      assert.ok(!(await transcripts()).includes('prisma rolled back'));
    }

    // findUnique calls made in the same tick are batched by Prisma into one query; tenant B asking
    // for tenant A's row id at the same moment as A must still get nothing.
    const [a] = await rowsOf(db, TENANT_A);
    const [forA, forB] = await Promise.all([
      runWithTenant(TENANT_A, async () => await prisma.conversation.findUnique({ where: { id: BigInt(a!.id) } })),
      runWithTenant(TENANT_B, async () => await prisma.conversation.findUnique({ where: { id: BigInt(a!.id) } })),
    ]);
    assert.equal(forA?.transcript, a!.transcript);
    assert.equal(forB, null);
  } finally {
    await base.$disconnect();
  }
});
