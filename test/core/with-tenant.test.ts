import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { withTenant } from '../../src/adapters/pg.ts';
import { getTenant, tryGetTenant } from '../../src/context/storage.ts';
import { ErrorCodes } from '../../src/errors.ts';
import { createTestDatabase, installFence, rowsOf, TENANT_A, TENANT_B, type Fenced, type TestDatabase } from '../support/db.ts';

let db: TestDatabase;
let fence: Fenced;
before(async () => {
  db = await createTestDatabase();
  fence = await installFence(db);
});
after(() => db.drop());

const tenantsSeen = async (c: { query: (t: string) => Promise<{ rows: Array<{ tenant_id: string }> }> }) =>
  (await c.query('SELECT DISTINCT tenant_id FROM conversations ORDER BY 1')).rows.map((r) => r.tenant_id);

for (const pipeline of [false, true]) {
  test(`withTenant scopes reads to the tenant (pipeline=${pipeline})`, async () => {
    const pool = db.pool(db.roles.app, { pipeline } as object);
    assert.deepEqual(await withTenant(pool, TENANT_A, tenantsSeen, { key: fence.key }), [TENANT_A]);
    assert.deepEqual(await withTenant(pool, TENANT_B, tenantsSeen, { key: fence.key }), [TENANT_B]);
    const { rows } = await withTenant(pool, TENANT_A, (c) => c.query<{ n: number }>('SELECT count(*)::int AS n FROM conversations'), { key: fence.key });
    assert.equal(rows[0]!.n, 3);
  });
}

test('strict mode binds the token to the transaction and still reads', async () => {
  const pool = db.pool(db.roles.app);
  assert.deepEqual(await withTenant(pool, TENANT_B, tenantsSeen, { key: fence.key, bindToTransaction: true }), [TENANT_B]);
});

test('a pooled connection carries no tenant after withTenant, even if SQL copied the token to the session', async () => {
  const pool = db.pool(db.roles.app, { max: 1 });
  await withTenant(pool, TENANT_A, async (c) => {
    await c.query("SELECT set_config('tenantfence.context', current_setting('tenantfence.context'), false)");
  }, { key: fence.key });
  const client = await pool.connect();
  try {
    assert.deepEqual(await tenantsSeen(client), []);
    const { rows } = await client.query("SELECT current_setting('tenantfence.context', true) AS v");
    assert.equal(rows[0].v, '');
  } finally {
    client.release();
  }
});

test('the callback error rolls back the writes and propagates', async () => {
  const pool = db.pool(db.roles.app);
  const before = (await rowsOf(db, TENANT_A)).length;
  await assert.rejects(
    withTenant(pool, TENANT_A, async (c) => {
      await c.query(`INSERT INTO conversations (tenant_id, agent_id) VALUES ($1, gen_random_uuid())`, [TENANT_A]);
      throw new Error('boom');
    }, { key: fence.key }),
    /boom/,
  );
  assert.equal((await rowsOf(db, TENANT_A)).length, before);
});

test('a swallowed statement error is not reported as a commit', async () => {
  const pool = db.pool(db.roles.app);
  await assert.rejects(
    withTenant(pool, TENANT_A, async (c) => {
      await c.query('SELECT 1/0').catch(() => undefined);
    }, { key: fence.key }),
    (e: { code?: string }) => e.code === ErrorCodes.DATABASE,
  );
});

test('an invalid tenant id is refused before any SQL is sent', async () => {
  let connected = false;
  const pool = { connect: async () => { connected = true; throw new Error('must not connect'); } };
  for (const bad of ['', 'a.b', "x' OR 1=1 --", 'a'.repeat(129), 42 as unknown as string]) {
    await assert.rejects(withTenant(pool, bad, async () => 1, { key: fence.key }), (e: { code?: string }) => e.code === ErrorCodes.INVALID_TENANT);
  }
  assert.equal(connected, false);
});

test('getTenant inside withTenant, TF_NO_TENANT outside', async () => {
  const pool = db.pool(db.roles.app);
  assert.equal(await withTenant(pool, TENANT_B, async () => getTenant(), { key: fence.key }), TENANT_B);
  assert.equal(tryGetTenant(), undefined);
  assert.throws(() => getTenant(), (e: { code?: string }) => e.code === ErrorCodes.NO_TENANT);
});
