/**
 * The audit log holds against the agent's own SQL: it cannot read, write, forge or roll back
 * records, and a statement that fails or is refused still leaves one.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { withTenant } from '../../src/adapters/pg.ts';
import { AuditLog } from '../../src/gateway/audit-log.ts';
import { createGateway, type GatewayApp } from '../../src/gateway/http.ts';
import { rowsOf, TENANT_A, TENANT_B } from '../support/db.ts';
import { auditRows, jwt, JWT_SECRET, setUp, sqlstateOf, type Setup, postQuery } from './helpers.ts';

let s: Setup;
let app: GatewayApp;
before(async () => {
  s = await setUp({ agentWrite: true });
  app = createGateway({ pool: s.agentPool(), key: s.fence.key, auth: { jwtSecret: JWT_SECRET }, mode: 'write' });
});
after(async () => {
  await app.close();
  await s.db.drop();
});

const post = async (tenant: string, sql: string) => postQuery(app, await jwt({ tenant_id: tenant, sub: `agent-${tenant.slice(0, 2)}` }, { expiresIn: '5m' }), { sql });

test('agent SQL cannot read, insert, update, delete or truncate audit records', async () => {
  await post(TENANT_B, 'SELECT count(*) FROM conversations');
  const before = await auditRows(s.db);
  const ex = s.executor({ mode: 'write' });
  const attempts = [
    'SELECT * FROM tenantfence.audit_log',
    `INSERT INTO tenantfence.audit_log (request_id, tenant_id, verdict) VALUES (gen_random_uuid(), '${TENANT_B}', 'ok')`,
    `UPDATE tenantfence.audit_log SET statement = 'nothing to see'`,
    'DELETE FROM tenantfence.audit_log',
    'TRUNCATE tenantfence.audit_log',
  ];
  for (const sql of attempts) {
    await assert.rejects(ex.execute({ tenant: TENANT_A, sql, params: [] }), (e) => sqlstateOf(e) === '42501', sql);
  }
  assert.deepEqual(await auditRows(s.db), before);
});

test('agent SQL cannot forge a record through audit_append', async () => {
  const before = (await auditRows(s.db)).length;
  const ex = s.executor({ mode: 'write' });
  const record = JSON.stringify({ kid: s.fence.key.kid, id: randomUUID(), tenant: TENANT_B, verdict: 'ok', statement: 'forged' });
  const forgeries = [
    `SELECT tenantfence.audit_append('${record}', repeat('0', 64))`,
    // The context token's MAC is visible to SQL; it is over another message, so it is no audit MAC.
    `SELECT tenantfence.audit_append('${record}', split_part(current_setting('tenantfence.context'), '.', 6))`,
  ];
  for (const sql of forgeries) {
    await assert.rejects(ex.execute({ tenant: TENANT_A, sql, params: [] }), (e) => sqlstateOf(e) === '42501', sql);
  }
  assert.equal((await auditRows(s.db)).length, before);
});

test('a replayed record is refused', async () => {
  const log = new AuditLog({ pool: s.agentPool(), key: s.fence.key, redaction: 'full' });
  const record = { requestId: randomUUID(), tenant: TENANT_A, principal: 'p', fingerprint: 'f', statement: 'SELECT 1', verdict: 'ok' as const };
  await log.append(record);
  await assert.rejects(log.append(record));
});

test('failed, rolled-back and refused statements still leave their record', async () => {
  const aBefore = await rowsOf(s.db, TENANT_A);
  const failed = await post(TENANT_A, `UPDATE conversations SET transcript = 'x' || (1 / (id - id))::text`);
  assert.equal(failed.status, 400);
  // The firewall refuses the tenantfence schema outright (the database would refuse it too:
  // the agent role holds no privilege on audit_log, tested above with the firewall skipped).
  const sneaky = await post(TENANT_A, 'DELETE FROM tenantfence.audit_log');
  assert.equal(sneaky.status, 422);
  assert.equal(sneaky.body.error.code, 'TF_SQL_REJECTED');
  const refused = await post(TENANT_A, 'SELECT 1; DELETE FROM tenantfence.audit_log');
  assert.equal(refused.status, 422);
  assert.deepEqual(await rowsOf(s.db, TENANT_A), aBefore, 'the failed write rolled back');
  const rows = await auditRows(s.db);
  const find = (statement: string) => rows.find((r) => r.statement === statement);
  assert.equal(find(`UPDATE conversations SET transcript = 'x' || (1 / (id - id))::text`)?.sqlstate, '22012');
  assert.equal(find('DELETE FROM tenantfence.audit_log')?.verdict, 'rejected');
  assert.equal(find('SELECT 1; DELETE FROM tenantfence.audit_log')?.verdict, 'rejected');
});

test("the app role reads only its own tenant's audit records", async () => {
  await post(TENANT_A, 'SELECT 1 AS a');
  await post(TENANT_B, 'SELECT 1 AS b');
  const pool = s.db.pool(s.db.roles.app);
  for (const tenant of [TENANT_A, TENANT_B]) {
    const seen = await withTenant(pool, tenant, async (c) => (await c.query<{ tenant_id: string }>('SELECT DISTINCT tenant_id FROM tenantfence.audit_log')).rows, { key: s.fence.key });
    assert.deepEqual(seen, [{ tenant_id: tenant }]);
  }
  const client = await pool.connect();
  try {
    assert.equal((await client.query('SELECT count(*)::int AS n FROM tenantfence.audit_log')).rows[0].n, 0, 'no context, no records');
    await assert.rejects(client.query(`DELETE FROM tenantfence.audit_log`), (e: { code?: string }) => e.code === '42501');
  } finally {
    client.release();
  }
});

test('redaction: fingerprint-only keeps no statement text', async () => {
  const redacting = createGateway({ pool: s.agentPool(), key: s.fence.key, auth: { jwtSecret: JWT_SECRET }, auditStatements: 'fingerprint' });
  const token = await jwt({ tenant_id: TENANT_A, sub: 'redacted' }, { expiresIn: '5m' });
  const res = await redacting.request('/v1/query', { method: 'POST', headers: { Authorization: `Bearer ${token}` }, body: JSON.stringify({ sql: "SELECT 'private' AS x" }) });
  assert.equal(res.status, 200);
  const row = (await auditRows(s.db)).find((r) => r.principal === 'redacted');
  assert.equal(row?.statement, null);
  assert.equal(typeof row?.fingerprint, 'string');
  await redacting.close();
});

test('records that arrive together are committed together, and one refused record does not take the others with it', async () => {
  const log = new AuditLog({ pool: s.agentPool(), key: s.fence.key, redaction: 'full' });
  const before = (await auditRows(s.db)).length;
  const duplicate = randomUUID();
  await log.append({ requestId: duplicate, tenant: TENANT_A, principal: 'p', fingerprint: null, statement: 'SELECT 0', verdict: 'ok' });
  const records = Array.from({ length: 40 }, (_, i) => ({
    requestId: i === 17 ? duplicate : randomUUID(), tenant: TENANT_A, principal: 'p', fingerprint: null, statement: `SELECT ${i}`, verdict: 'ok' as const,
  }));
  const settled = await Promise.allSettled(records.map((r) => log.append(r)));
  assert.deepEqual(settled.map((r, i) => (i === 17 ? r.status === 'rejected' : r.status === 'fulfilled')), records.map(() => true));
  const rows = await auditRows(s.db);
  assert.equal(rows.length, before + 1 + 39);
  for (const r of records.filter((_, i) => i !== 17)) assert.ok(rows.some((row) => row.statement === r.statement), `${r.statement} has no record`);
});
