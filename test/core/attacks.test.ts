/**
 * Agent SQL running inside tenant A's transaction, connected as the application role, tries to
 * reach tenant B's rows. Every test asserts on the data: what A's session saw, and B's rows
 * afterwards as the superuser sees them.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { withTenant, type PgClientLike } from '../../src/adapters/pg.ts';
import { ATTACKS } from '../../src/cli/commands/demo.ts';
import { formatSecret, generateKey, signContext, CONTEXT_SETTING } from '../../src/context/token.ts';
import { init } from '../../src/cli/commands/init.ts';
import { rotateKey, retireKey } from '../../src/cli/commands/keys.ts';
import { createTestDatabase, installFence, rowsOf, TENANT_A, TENANT_B, type Fenced, type TestDatabase } from '../support/db.ts';

let db: TestDatabase;
let fence: Fenced;
let bRows: Awaited<ReturnType<typeof rowsOf>>;
before(async () => {
  db = await createTestDatabase();
  fence = await installFence(db);
  bRows = await rowsOf(db, TENANT_B);
  assert.equal(bRows.length, 2);
});
after(() => db.drop());

const forgedFor = (tenant: string) => signContext(fence.key, TENANT_A).replace(`.${TENANT_A}.`, `.${tenant}.`);

/** Rows of B visible to the session right now (0 is the only acceptable answer). */
async function visibleB(c: Pick<PgClientLike, 'query'>): Promise<number> {
  const { rows } = await c.query<{ n: number }>('SELECT count(*)::int AS n FROM conversations WHERE tenant_id = $1', [TENANT_B]);
  return rows[0]!.n;
}

async function asTenantA(fn: (c: PgClientLike) => Promise<void>): Promise<void> {
  await withTenant(db.pool(db.roles.app, { max: 1 }), TENANT_A, fn, { key: fence.key }).catch((e: { code?: string }) => {
    // An error is an acceptable outcome for an attack; the data assertions below decide.
    if (!e.code) throw e;
  });
  assert.deepEqual(await rowsOf(db, TENANT_B), bRows, "tenant B's rows changed");
}

for (const attack of ATTACKS) {
  test(`attack ${attack.id} with a forged token sees none of B's rows`, async () => {
    let seen = -1;
    await asTenantA(async (c) => {
      let last: { rows: Array<{ b_rows?: number }> } | undefined;
      for (const step of attack.steps(CONTEXT_SETTING, forgedFor(TENANT_B))) last = await c.query(step);
      seen = last?.rows[0]?.b_rows ?? -1;
    });
    assert.equal(seen, 0);
  });
}

const badTokens: Record<string, () => string> = {
  'tenant swapped': () => forgedFor(TENANT_B),
  'signed with another key under the same key id': () => signContext({ kid: fence.key.kid, secret: Buffer.alloc(32, 1) }, TENANT_B),
  'unknown key id': () => signContext(generateKey('zz'), TENANT_B),
  expired: () => signContext(fence.key, TENANT_B, { now: () => Date.now() - 3_600_000, ttlSeconds: 60 }),
  'bound to another transaction': () => signContext(fence.key, TENANT_B, { xid: '1' }),
  'expiry pushed forward': () => signContext(fence.key, TENANT_A).replace(/\.(\d+)\.\./, (_m, e) => `.${Number(e) + 9999}..`).replace(`.${TENANT_A}.`, `.${TENANT_B}.`),
  'truncated mac': () => forgedFor(TENANT_B).slice(0, -2),
  'no mac': () => forgedFor(TENANT_B).split('.').slice(0, 5).join('.'),
  'bare tenant id (the seed recipe)': () => TENANT_B,
  'extra field': () => `${forgedFor(TENANT_B)}.x`,
  'non-numeric expiry': () => forgedFor(TENANT_B).replace(/\.(\d+)\.\./, '.1e99..'),
  huge: () => 'v1.' + 'a'.repeat(10_000),
  empty: () => '',
  // HMAC without the key: a hash of the payload alone.
  'plain sha256 mac': () => {
    const payload = forgedFor(TENANT_B).split('.').slice(0, 5).join('.');
    return `${payload}.${createHmac('sha256', '').update(payload).digest('hex')}`;
  },
};

for (const [name, make] of Object.entries(badTokens)) {
  test(`a ${name} token verifies to no tenant: no rows, no writes`, async () => {
    let seen = -1;
    let verified: unknown = 'unset';
    let updated = -1;
    await asTenantA(async (c) => {
      await c.query(`SELECT set_config($1, $2, true)`, [CONTEXT_SETTING, make()]);
      verified = (await c.query<{ t: string | null }>('SELECT tenantfence.current_tenant() AS t')).rows[0]!.t;
      seen = (await c.query<{ n: number }>('SELECT count(*)::int AS n FROM conversations')).rows[0]!.n;
      updated = (await c.query(`UPDATE conversations SET transcript = 'pwned'`)).rowCount ?? -1;
      await c.query(`INSERT INTO conversations (tenant_id, agent_id) VALUES ($1, gen_random_uuid())`, [TENANT_B]);
    });
    assert.equal(verified, null);
    assert.equal(seen, 0);
    assert.equal(updated, 0);
  });
}

test('the key table, the key pads and a signing function are out of reach of the app and agent roles', async () => {
  for (const role of [db.roles.app, db.roles.agent]) {
    const pool = db.pool(role);
    await assert.rejects(pool.query('SELECT * FROM tenantfence.keys'), { code: '42501' });
    // Two functions verify a MAC, two end a fence, the admin path's three use no key; none produces a
    // MAC, the fenced roles may not record or enter an admin session, and nothing else lives in the schema.
    const { rows } = await pool.query(
      `SELECT array_agg(p.proname::text ORDER BY p.proname) AS names,
              array_agg(p.proname::text ORDER BY p.proname) FILTER (WHERE has_function_privilege(p.oid, 'EXECUTE')) AS callable
         FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'tenantfence'`,
    );
    assert.deepEqual(rows[0].names, ['admin_enter', 'admin_record', 'admin_session', 'audit_append', 'current_tenant', 'fence_intact', 'open_fence', 'reset_session'],
      'the database must have no signing function');
    assert.ok(!rows[0].callable.includes('admin_record') && !rows[0].callable.includes('admin_enter'), rows[0].callable.join(', '));
    await assert.rejects(pool.query('SET ROLE tenantfence_owner'), { code: '42501' });
    await assert.rejects(pool.query(`ALTER TABLE conversations DISABLE ROW LEVEL SECURITY`), { code: '42501' });
  }
  // The function body (readable by anyone) carries no secret: it reads the pads from the table.
  const { rows } = await db.pool(db.roles.app).query(`SELECT prosrc FROM pg_proc WHERE proname = 'current_tenant'`);
  assert.match(rows[0].prosrc, /FROM "tenantfence"\.keys/);
});

test('writes for B: UPDATE and DELETE touch nothing, INSERT is refused by WITH CHECK', async () => {
  let updated = -1;
  let deleted = -1;
  await asTenantA(async (c) => {
    updated = (await c.query(`UPDATE conversations SET transcript = 'pwned' WHERE tenant_id = $1`, [TENANT_B])).rowCount ?? -1;
    deleted = (await c.query(`DELETE FROM conversations WHERE tenant_id = $1`, [TENANT_B])).rowCount ?? -1;
  });
  assert.equal(updated, 0);
  assert.equal(deleted, 0);
  let code = '';
  await withTenant(db.pool(db.roles.app), TENANT_A, (c) => c.query(`INSERT INTO conversations (tenant_id, agent_id) VALUES ($1, gen_random_uuid())`, [TENANT_B]), { key: fence.key }).catch(
    (e: { code: string }) => (code = e.code),
  );
  assert.equal(code, '42501');
  // Moving A's own row to B is refused too (WITH CHECK on the new row).
  code = '';
  await withTenant(db.pool(db.roles.app), TENANT_A, (c) => c.query(`UPDATE conversations SET tenant_id = $1`, [TENANT_B]), { key: fence.key }).catch(
    (e: { code: string }) => (code = e.code),
  );
  assert.equal(code, '42501');
  assert.equal((await rowsOf(db, TENANT_B)).length, 2);
  assert.equal((await rowsOf(db, TENANT_A)).length, 3);
});

test('a token is never visible to another session: it is sent as a bind parameter', async () => {
  const app = db.pool(db.roles.app, { max: 2 });
  let seenByOther = '';
  await withTenant(app, TENANT_A, async () => {
    const { rows } = await db.admin.query(`SELECT string_agg(query, ' ') AS q FROM pg_stat_activity WHERE usename = $1`, [db.roles.app]);
    seenByOther = rows[0].q ?? '';
  }, { key: fence.key });
  assert.ok(!/v1\.[a-z0-9]+\./.test(seenByOther), 'a token appeared in pg_stat_activity');
});

test('key rotation: old tokens keep working until the old key is retired, then see nothing', async () => {
  const other = await createTestDatabase();
  try {
    const f = await installFence(other);
    const { secret } = await rotateKey({ db: other.admin });
    const newKey = { kid: secret.split('.')[0]!, secret: Buffer.from(secret.split('.')[1]!, 'base64url') };
    const app = other.pool(other.roles.app);
    const count = (key: typeof f.key) => withTenant(app, TENANT_A, async (c) => (await visibleB(c)) + (await c.query<{ n: number }>('SELECT count(*)::int AS n FROM conversations')).rows[0]!.n, { key });
    assert.equal(await count(f.key), 3);
    assert.equal(await count(newKey), 3);
    await retireKey({ db: other.admin, keyId: f.key.kid });
    assert.equal(await count(f.key), 0);
    assert.equal(await count(newKey), 3);
    await assert.rejects(retireKey({ db: other.admin, keyId: newKey.kid }), /only active key/);
    // init with the retired key as TENANTFENCE_SECRET is refused: every request would see nothing.
    await assert.rejects(
      init({ db: other.admin, appRole: other.roles.app, agentRole: other.roles.agent, secret: formatSecret(f.key) }),
      (e: { code?: string }) => e.code === 'TF_NO_SECRET',
    );
  } finally {
    await other.drop();
  }
});
