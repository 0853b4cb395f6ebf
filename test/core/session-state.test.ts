/**
 * State that tenant A's SQL leaves on a pooled connection must not reach tenant B's next request
 * on that connection: temp objects, prepared statements, cursors, settings, roles, locks.
 * One connection (max: 1) so B's request reuses exactly what A's request touched.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { withTenant, type PgClientLike } from '../../src/adapters/pg.ts';
import { ident } from '../../src/sql/quote.ts';
import { createTestDatabase, installFence, rowsOf, TENANT_A, TENANT_B, type Fenced, type TestDatabase } from '../support/db.ts';

let db: TestDatabase;
let fence: Fenced;
before(async () => {
  db = await createTestDatabase();
  fence = await installFence(db);
  // The riskiest configuration: the app role allowed temp objects (init --app-temp).
  await db.admin.query(`DO $$ BEGIN EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO ${ident(db.roles.app)}', current_database()); END $$`);
});
after(() => db.drop());

const transcriptsOf = (tenant: string) => rowsOf(db, tenant).then((rows) => rows.map((r) => r.transcript));
const as = <T>(pool: ReturnType<TestDatabase['pool']>, tenant: string, fn: (c: PgClientLike) => Promise<T>) =>
  withTenant(pool, tenant, fn, { key: fence.key });

test('a temp view that shadows a table does not outlive the request that made it', async () => {
  const pool = db.pool(db.roles.app, { max: 1 });
  await as(pool, TENANT_A, async (c) => {
    await c.query('CREATE TEMP TABLE loot AS SELECT * FROM public.conversations WITH NO DATA');
    await c.query(`CREATE FUNCTION pg_temp.steal() RETURNS SETOF public.conversations LANGUAGE plpgsql AS $$
      BEGIN INSERT INTO pg_temp.loot SELECT * FROM public.conversations; RETURN QUERY SELECT * FROM public.conversations; END $$`);
    await c.query('CREATE TEMP VIEW conversations AS SELECT * FROM pg_temp.steal()');
  });
  const seenByB = await as(pool, TENANT_B, async (c) => (await c.query<{ transcript: string }>('SELECT transcript FROM conversations ORDER BY id')).rows.map((r) => r.transcript));
  assert.deepEqual(seenByB, await transcriptsOf(TENANT_B));
  const loot = await as(pool, TENANT_A, async (c) => (await c.query(`SELECT to_regclass('pg_temp.loot') AS t`)).rows[0]!.t);
  assert.equal(loot, null, 'the temp table survived into the next request');
});

test('a prepared statement replaced by SQL never runs in the next request', async () => {
  const pool = db.pool(db.roles.app, { max: 1 });
  const recent = { name: 'recent', text: 'SELECT transcript FROM conversations ORDER BY id' };
  await as(pool, TENANT_B, (c) => c.query(recent as unknown as string));
  await as(pool, TENANT_A, async (c) => {
    await c.query('DEALLOCATE recent');
    await c.query(`PREPARE recent AS SELECT transcript || ' [hijacked]' AS transcript FROM conversations WHERE pg_advisory_lock(id) IS NOT NULL ORDER BY id`);
  });
  const got = await as(pool, TENANT_B, async (c) => (await c.query<{ transcript: string }>(recent as unknown as string)).rows.map((r) => r.transcript));
  assert.deepEqual(got, await transcriptsOf(TENANT_B));
  const { rows } = await db.admin.query(`SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory'`);
  assert.equal(rows[0].n, 0);
});

test('cursors WITH HOLD, LISTEN, settings, SET ROLE and advisory locks are gone after the request', async () => {
  const pool = db.pool(db.roles.app, { max: 1 });
  const other = db.role('tf_other');
  await db.admin.query(`CREATE ROLE ${ident(other)}; GRANT ${ident(other)} TO ${ident(db.roles.app)}`);
  // The 1 ms timeout comes last: under load it can cancel even the end of A's own request (the
  // connection is then destroyed, never pooled), so A's outcome is not what this test judges.
  await as(pool, TENANT_A, async (c) => {
    await c.query('DECLARE held CURSOR WITH HOLD FOR SELECT transcript FROM conversations');
    await c.query('LISTEN x');
    await c.query(`SET search_path = pg_temp, public`);
    await c.query(`SELECT pg_advisory_lock(42)`);
    await c.query(`SET ROLE ${ident(other)}`);
    await c.query(`SET statement_timeout = 1`);
  }).catch(() => undefined);
  const state = await as(pool, TENANT_B, async (c) => ({
    user: (await c.query<{ u: string }>('SELECT current_user AS u')).rows[0]!.u,
    cursors: (await c.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_cursors')).rows[0]!.n,
    channels: (await c.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_listening_channels()')).rows[0]!.n,
    searchPath: (await c.query<{ p: string }>('SELECT current_setting($1) AS p', ['search_path'])).rows[0]!.p,
    timeout: (await c.query<{ t: string }>('SELECT current_setting($1) AS t', ['statement_timeout'])).rows[0]!.t,
    locks: (await c.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()`)).rows[0]!.n,
  }));
  // The timeout B sees is the fence's own per-transaction pin, not the 1 ms A left behind.
  assert.deepEqual(state, { user: db.roles.app, cursors: 0, channels: 0, searchPath: '"$user", public', timeout: '30s', locks: 0 });
});
