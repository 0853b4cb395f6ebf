/**
 * The audited admin path (issue 9, item 5): a named admin login in tenantfence_admin sees every
 * tenant only inside withAdmin, every use is on record with its reason (even a rolled-back one),
 * the record is append-only, and neither the app role nor the agent can take the path.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { withAdmin } from '../../src/adapters/admin.ts';
import { withTenant } from '../../src/adapters/pg.ts';
import { runAudit } from '../../src/audit/runner.ts';
import { ErrorCodes } from '../../src/errors.ts';
import { ident, literal } from '../../src/sql/quote.ts';
import { protect } from '../../src/cli/commands/protect.ts';
import { createTestDatabase, installFence, TENANT_A, TENANT_B, type Fenced, type TestDatabase } from '../support/db.ts';

let db: TestDatabase;
let fence: Fenced;
let support: string;
before(async () => {
  db = await createTestDatabase();
  fence = await installFence(db);
  await protect({ allowGlobalKeys: true, db: db.admin, tables: ['conversations'], appRole: db.roles.app, agentRole: db.roles.agent, adminAccess: true });
  support = db.role('tf_support');
  await db.admin.query(`CREATE ROLE ${ident(support)} LOGIN PASSWORD ${literal(db.password)}; GRANT tenantfence_admin TO ${ident(support)}`);
});
after(() => db.drop());

const tenantsIn = async (c: { query: (t: string) => Promise<{ rows: Array<{ tenant_id: string }> }> }) =>
  (await c.query('SELECT DISTINCT tenant_id::text FROM conversations ORDER BY 1')).rows.map((r) => r.tenant_id);

async function log(): Promise<Array<{ login: string; reason: string; entered: number }>> {
  const { rows } = await db.admin.query(`SELECT l.login, l.reason, (SELECT count(*)::int FROM tenantfence.admin_sessions s WHERE s.log_id = l.id) AS entered
    FROM tenantfence.admin_log l ORDER BY l.at`);
  return rows;
}

test('inside withAdmin the admin login sees every tenant; outside it, none; each use is recorded with its reason', async () => {
  const pool = db.pool(support);
  assert.deepEqual(await withAdmin(pool, 'ticket 4711: export for tenant migration', tenantsIn), [TENANT_A, TENANT_B].sort());
  const client = await pool.connect();
  try {
    assert.deepEqual(await tenantsIn(client), [], 'the admin login without withAdmin sees nothing');
    // an old record cannot be replayed from another transaction by hand... it binds only the one it enters
    await client.query('BEGIN');
    assert.deepEqual(await tenantsIn(client), []);
    await client.query('ROLLBACK');
  } finally {
    client.release();
  }
  const entries = await log();
  assert.deepEqual(entries.at(-1), { login: support, reason: 'ticket 4711: export for tenant migration', entered: 1 });
});

test('a use that fails is still on record, and its writes are rolled back', async () => {
  const pool = db.pool(support);
  const before = (await log()).length;
  await assert.rejects(withAdmin(pool, 'incident 12: fix a row', async (c) => {
    await c.query(`UPDATE conversations SET transcript = 'changed by admin' WHERE tenant_id = $1`, [TENANT_B]);
    throw new Error('operator aborted');
  }), /operator aborted/);
  const after = await log();
  assert.equal(after.length, before + 1);
  assert.deepEqual(after.at(-1)!.reason, 'incident 12: fix a row');
  const { rows } = await db.admin.query(`SELECT count(*)::int AS n FROM conversations WHERE transcript = 'changed by admin'`);
  assert.equal(rows[0].n, 0);
});

test('the log is append-only for the admin: no UPDATE, DELETE or direct INSERT, and no entering another login\'s record', async () => {
  const pool = db.pool(support);
  await withAdmin(pool, 'audit check', async () => undefined);
  const client = await pool.connect();
  try {
    for (const sql of [`UPDATE tenantfence.admin_log SET reason = 'nothing to see'`, 'DELETE FROM tenantfence.admin_log',
      `INSERT INTO tenantfence.admin_log (reason) VALUES ('forged')`, 'DELETE FROM tenantfence.admin_sessions']) {
      await assert.rejects(client.query(sql), { code: '42501' }, sql);
    }
  } finally {
    client.release();
  }
  // a second admin login cannot enter the first one's record
  const other = db.role('tf_support2');
  await db.admin.query(`CREATE ROLE ${ident(other)} LOGIN PASSWORD ${literal(db.password)}; GRANT tenantfence_admin TO ${ident(other)}`);
  const { rows } = await db.admin.query(`SELECT id FROM tenantfence.admin_log WHERE login = $1 LIMIT 1`, [support]);
  const c2 = await db.pool(other).connect();
  try {
    await c2.query('BEGIN');
    await assert.rejects(c2.query('SELECT tenantfence.admin_enter($1)', [rows[0].id]), { code: '42501' });
    await c2.query('ROLLBACK');
  } finally {
    c2.release();
  }
});

test('the app and agent roles cannot take the admin path, even inside their own fence', async () => {
  for (const role of [db.roles.app, db.roles.agent]) {
    const before = (await log()).length;
    await assert.rejects(withAdmin(db.pool(role), 'let me in', tenantsIn), (e: { code?: string }) => e.code === ErrorCodes.PRIVILEGE);
    assert.equal((await log()).length, before, 'nothing recorded for a refused role');
  }
  // the app role's SQL calling the functions directly inside a tenant transaction gets nothing more
  const seen = await withTenant(db.pool(db.roles.app), TENANT_A, async (c) => {
    await c.query('SAVEPOINT try_admin');
    await assert.rejects(c.query(`SELECT tenantfence.admin_record('x y z')`), { code: '42501' });
    await c.query('ROLLBACK TO SAVEPOINT try_admin');
    return tenantsIn(c);
  }, { key: fence.key });
  assert.deepEqual(seen, [TENANT_A]);
});

test('protect --admin-access audits clean; granting tenantfence_admin to the app role is an audit error', async () => {
  const opts = { schemas: ['public'], tenantColumn: 'tenant_id', appRole: db.roles.app, agentRole: db.roles.agent };
  const clean = await runAudit(db.admin, opts);
  assert.deepEqual(clean.findings.filter((f) => f.level !== 'info' && f.rule !== 'global-unique-on-tenant-table').map((f) => `${f.rule} ${f.object}`), []);
  await db.admin.query(`GRANT tenantfence_admin TO ${ident(db.roles.app)}`);
  try {
    const report = await runAudit(db.admin, opts);
    assert.deepEqual(report.findings.filter((f) => f.rule === 'role-reaches-admin').map((f) => f.object), [db.roles.app]);
  } finally {
    await db.admin.query(`REVOKE tenantfence_admin FROM ${ident(db.roles.app)}`);
  }
});

test('docs/operations.md migration path: an owner backfill under FORCE updates 0 rows; NO FORCE ... FORCE in one transaction updates them', async () => {
  const client = db.admin;
  await client.query('BEGIN');
  try {
    await client.query(`SET LOCAL ROLE ${ident(db.roles.owner)}`);
    const silent = await client.query(`UPDATE conversations SET transcript = transcript || ''`);
    assert.equal(silent.rowCount, 0, 'the owner is bound by FORCE: no error, nothing updated');
    await client.query('ALTER TABLE conversations NO FORCE ROW LEVEL SECURITY');
    const done = await client.query(`UPDATE conversations SET transcript = transcript || ''`);
    assert.equal(done.rowCount, 5);
    await client.query('ALTER TABLE conversations FORCE ROW LEVEL SECURITY');
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK');
    throw error;
  }
  const { rows } = await db.admin.query(`SELECT relforcerowsecurity AS forced FROM pg_class WHERE relname = 'conversations'`);
  assert.equal(rows[0].forced, true);
});
