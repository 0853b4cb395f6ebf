/**
 * Statement text built to break its own audit record: a lone UTF-16 surrogate (jsonb refuses the
 * `\ud800` escape JSON.stringify writes for it) and 60,000 DEL characters (6 characters each once
 * escaped, past audit_append's 262,144-character limit). Both once made the gateway answer 503
 * with no record, after committing the write. Now every statement has its record, and a write
 * commits only together with it.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import type pg from 'pg';
import { AuditLog } from '../../src/gateway/audit-log.ts';
import { createGateway, type GatewayApp } from '../../src/gateway/http.ts';
import { rowsOf, TENANT_A, TENANT_B } from '../support/db.ts';
import { auditRows, jwt, JWT_SECRET, setUp, type Setup, postQuery } from './helpers.ts';

let s: Setup;
let writer: GatewayApp;
let reader: GatewayApp;
let token: string;
let bBefore: Awaited<ReturnType<typeof rowsOf>>;

before(async () => {
  s = await setUp({ agentWrite: true });
  const options = { key: s.fence.key, auth: { jwtSecret: JWT_SECRET } };
  writer = createGateway({ ...options, pool: s.agentPool(), mode: 'write' });
  reader = createGateway({ ...options, pool: s.agentPool() });
  token = await jwt({ tenant_id: TENANT_A, sub: 'hostile' }, { expiresIn: '5m' });
  bBefore = await rowsOf(s.db, TENANT_B);
});
after(async () => {
  await writer.close();
  await reader.close();
  await s.db.drop();
});

const query = (app: GatewayApp, sql: string) => postQuery(app, token, { sql });

async function recordOf(id: string | null) {
  const { rows } = await s.db.admin.query('SELECT statement, verdict, reason, row_count::int, error_code, sqlstate FROM tenantfence.audit_log WHERE request_id = $1', [id]);
  return rows[0];
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const LONE = '\ud800';
const DELS = '\u007f'.repeat(60_000);

test('a write whose comment holds a lone surrogate commits with its record', async () => {
  const [row] = await rowsOf(s.db, TENANT_A);
  const sql = `UPDATE conversations SET transcript = 'surrogate' WHERE id = ${row!.id} -- ${LONE}`;
  const r = await query(writer, sql);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.rowCount, 1);
  assert.equal((await rowsOf(s.db, TENANT_A)).find((x) => x.id === row!.id)?.transcript, 'surrogate');
  const record = await recordOf(r.id);
  assert.equal(record?.verdict, 'ok');
  assert.equal(record?.row_count, 1);
  assert.equal(record?.statement, sql.replace(LONE, '\ufffd'), 'stored with the replacement character');
});

test('a write padded with 60,000 DEL characters commits with its record, which keeps the SQL that ran', async () => {
  const rows = await rowsOf(s.db, TENANT_A);
  // Padding before the SQL once pushed it out of the record (only the head was kept).
  for (const [i, sql] of [
    `UPDATE conversations SET transcript = 'padded' WHERE id = ${rows[1]!.id} -- ${DELS}`,
    `/* ${DELS} */ UPDATE conversations SET transcript = 'padded first' WHERE id = ${rows[2]!.id}`,
  ].entries()) {
    const r = await query(writer, sql);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal((await rowsOf(s.db, TENANT_A)).find((x) => x.id === rows[i + 1]!.id)?.transcript, i === 0 ? 'padded' : 'padded first');
    const record = await recordOf(r.id);
    assert.equal(record?.verdict, 'ok');
    const ran = sql.replace(/-- .*$|\/\* .* \*\//s, ' ');
    assert.equal(record.statement.split('\n/* tenantfence')[0], ran, 'the statement without its comment');
    assert.match(record.statement, new RegExp(`comments removed for the audit log; 60\\d{3} characters in all, sha256 ${sha256(sql)} \\*/$`));
  }
  assert.deepEqual(await rowsOf(s.db, TENANT_B), bBefore);
});

test('a statement too long even without comments keeps its head, its tail and the hash of the whole', async () => {
  const sql = `SELECT '${DELS.slice(0, 30_000)}' AS a, count(*) AS ran_this, '${DELS.slice(0, 30_000)}' AS b FROM conversations`;
  const r = await query(reader, sql);
  assert.equal(r.status, 200, JSON.stringify(r.body).slice(0, 200));
  const record = await recordOf(r.id);
  const [head, rest] = record.statement.split('\n/* tenantfence: ');
  assert.ok(sql.startsWith(head) && head.startsWith("SELECT '"));
  assert.match(rest, new RegExp(`^${sql.length} characters without comments \\(${sql.length} with\\), cut here for the audit log; sha256 of the whole statement ${sha256(sql)} \\*/\n`));
  assert.ok(sql.endsWith(rest.split('*/\n')[1]!) && rest.endsWith("' AS b FROM conversations"));
});

test('reads and refusals with the same text are recorded too', async () => {
  for (const [app, sql, status, verdict] of [
    [reader, `SELECT count(*)::int AS n FROM conversations -- ${LONE}`, 200, 'ok'],
    [reader, `SELECT count(*)::int AS n FROM conversations -- ${DELS}${LONE}`, 200, 'ok'],
    [reader, `SELECT pg_sleep(0) -- ${LONE}${DELS}`, 422, 'rejected'],
    [writer, `DELETE FROM conversations WHERE id = 0 -- ${LONE}${DELS}`, 200, 'ok'],
  ] as const) {
    const r = await query(app, sql);
    assert.equal(r.status, status, JSON.stringify(r.body).slice(0, 200));
    assert.equal((await recordOf(r.id))?.verdict, verdict, sql.slice(0, 60));
  }
});

test('a record the database still refuses is sent again without the statement text', async () => {
  const pool = s.agentPool();
  let calls = 0;
  // The first append fails as an unloggable text would (invalid_text_representation).
  const flaky = {
    query: (config: pg.QueryConfig) => (++calls === 1 ? Promise.reject(Object.assign(new Error('bad record'), { code: '22P02' })) : pool.query(config)),
  } as unknown as pg.Pool;
  const log = new AuditLog({ pool: flaky, key: s.fence.key, redaction: 'full' });
  const id = randomUUID();
  await log.append({ requestId: id, tenant: TENANT_A, principal: 'p', fingerprint: 'f', statement: 'SELECT 1', verdict: 'ok', rows: 1 });
  assert.equal(calls, 2);
  assert.deepEqual(await recordOf(id), { statement: null, verdict: 'ok', reason: 'statement_unloggable', row_count: 1, error_code: null, sqlstate: null });
});

test('a write whose record cannot be appended rolls back, and the failure is recorded', async () => {
  await s.db.admin.query(`CREATE FUNCTION refuse_marked() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN IF NEW.statement LIKE '%refuse-my-record%' AND NEW.verdict = 'ok' THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$`);
  await s.db.admin.query('CREATE TRIGGER refuse_marked BEFORE INSERT ON tenantfence.audit_log FOR EACH ROW EXECUTE FUNCTION refuse_marked()');
  try {
    const before = await rowsOf(s.db, TENANT_A);
    const r = await query(writer, `UPDATE conversations SET transcript = 'lost' -- refuse-my-record`);
    assert.equal(r.status, 503);
    assert.equal(r.body.error.code, 'TF_AUDIT');
    assert.match(r.body.error.message, /rolled back and nothing changed/);
    assert.deepEqual(await rowsOf(s.db, TENANT_A), before, 'the write did not commit without its record');
    const record = await recordOf(r.id);
    assert.equal(record?.verdict, 'error');
    assert.equal(record?.error_code, 'TF_AUDIT');
  } finally {
    await s.db.admin.query('DROP TRIGGER refuse_marked ON tenantfence.audit_log');
  }
  const all = await auditRows(s.db);
  assert.ok(all.every((row) => row.tenant_id === TENANT_A));
});
