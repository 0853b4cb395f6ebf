/**
 * Connection roles (`init --app-logins N`, `rolePool`): one login role per pooled connection, so
 * that one tenant's SQL cannot watch or terminate another tenant's request running at the same
 * time. The database here is made managed-shaped first: the signalling and activity functions that
 * init revokes when it runs as a superuser are granted back to PUBLIC, as they stay on a server
 * where init may not revoke them. The shared login role is attacked too, as the control: the same
 * SQL reads the other tenant's statement and kills its transaction there.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rolePool, withTenant, type PgPoolLike } from '../../src/adapters/pg.ts';
import { attackConcurrentSession, SESSION_MARKER } from '../support/sessions.ts';
import { init } from '../../src/cli/commands/init.ts';
import { formatSecret } from '../../src/context/token.ts';
import { ErrorCodes } from '../../src/errors.ts';
import { urlForRole } from '../../src/embedded/database.ts';
import { connectionRoleNames } from '../../src/sql/roles.ts';
import { ident } from '../../src/sql/quote.ts';
import pg from 'pg';
import { createTestDatabase, installFence, rowsOf, serverUrl, TENANT_A, TENANT_B, type Fenced, type TestDatabase } from '../support/db.ts';

let db: TestDatabase;
let fence: Fenced;
let logins: string[];
before(async () => {
  db = await createTestDatabase();
  fence = await installFence(db);
  await init({ db: db.admin, appRole: db.roles.app, agentRole: db.roles.agent, secret: formatSecret(fence.key), appLogins: 3, appPassword: db.password });
  logins = connectionRoleNames(db.roles.app, 3);
  await db.admin.query(`GRANT EXECUTE ON FUNCTION pg_catalog.pg_terminate_backend(integer, bigint), pg_catalog.pg_cancel_backend(integer),
    pg_catalog.pg_stat_get_activity(integer) TO PUBLIC`);
  await db.admin.query('GRANT SELECT ON pg_catalog.pg_stat_activity TO PUBLIC');
});
after(async () => {
  await db.drop();
  const server = new pg.Client(serverUrl());
  await server.connect();
  for (const role of logins) await server.query(`DROP ROLE IF EXISTS ${ident(role)}`).catch(() => undefined);
  await server.end();
});

/** The attack, then whether B's row committed (and the row removed for the next test). */
async function attack(pool: PgPoolLike) {
  const r = await attackConcurrentSession(pool, fence.key, 'INSERT INTO conversations (tenant_id, agent_id, transcript) VALUES ($1, gen_random_uuid(), $2)');
  const written = (await rowsOf(db, TENANT_B)).some((row) => row.transcript === SESSION_MARKER);
  await db.admin.query('DELETE FROM conversations WHERE transcript = $1', [SESSION_MARKER]);
  return { ...r, written };
}

test('control: on one shared login role, A reads B\'s running statement and kills B\'s transaction', async () => {
  const pool = db.pool(db.roles.app, { max: 4 });
  const r = await attack(pool);
  assert.ok(r.seen.texts.some((t) => t.includes(SESSION_MARKER)), 'A read B\'s statement text');
  assert.equal(r.kill.terminated, true);
  assert.deepEqual(r.b, { ok: false, code: ErrorCodes.CONNECTION });
  assert.equal(r.written, false, 'B\'s write was lost');
});

test('rolePool: A can neither read B\'s running statement nor terminate it; B\'s write commits', async () => {
  const pool = rolePool({ connectionString: urlForRole(db.url, db.roles.app, db.password), roles: logins });
  try {
    const r = await attack(pool);
    assert.ok(logins.includes(r.seen.role) && r.b.ok && logins.includes(r.b.role) && r.seen.role !== r.b.role, `A and B ran as different connection roles: ${JSON.stringify(r)}`);
    assert.equal(r.seen.texts.length, 1, 'B\'s session is listed');
    assert.ok(!r.seen.texts.some((t) => t.includes(SESSION_MARKER)), `A read B's statement: ${r.seen.texts.join(' | ')}`);
    assert.deepEqual(r.kill, { terminated: false, error: '42501' });
    assert.equal(r.written, true, 'B\'s write committed');
  } finally {
    await pool.end();
  }
});

test('rolePool serves more requests than it has roles, each role on one connection, with isolation intact', async () => {
  const pool = rolePool({ connectionString: urlForRole(db.url, db.roles.app, db.password), roles: logins });
  try {
    const tenants = [TENANT_A, TENANT_B];
    const results = await Promise.all(Array.from({ length: 24 }, (_, i) => withTenant(pool, tenants[i % 2]!, async (c) => {
      const { rows } = await c.query<{ tenant_id: string; role: string }>('SELECT DISTINCT tenant_id::text, current_user AS role FROM conversations');
      return { tenant: tenants[i % 2]!, rows };
    }, { key: fence.key })));
    for (const r of results) assert.deepEqual(r.rows.map((x) => x.tenant_id), [r.tenant]);
    assert.deepEqual(new Set(results.flatMap((r) => r.rows.map((x) => x.role))), new Set(logins));
    assert.ok(pool.totalCount <= logins.length);
  } finally {
    await pool.end();
  }
});

test('init --app-logins refuses a count out of range and names that would not fit', async () => {
  await assert.rejects(init({ db: db.admin, appRole: db.roles.app, agentRole: db.roles.agent, secret: formatSecret(fence.key), appLogins: -1 }), (e: { code?: string }) => e.code === ErrorCodes.USAGE);
  await assert.rejects(init({ db: db.admin, appRole: 'a'.repeat(60), agentRole: db.roles.agent, secret: formatSecret(fence.key), appLogins: 10 }), (e: { code?: string }) => e.code === ErrorCodes.USAGE);
  assert.throws(() => rolePool({ roles: [] }), (e: { code?: string }) => e.code === ErrorCodes.USAGE);
});
