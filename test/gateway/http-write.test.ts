/**
 * `--write` mode: single INSERT/UPDATE/DELETE are allowed and still reach only the caller's
 * tenant, and the errors they raise carry none of another tenant's data.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createGateway, type GatewayApp } from '../../src/gateway/http.ts';
import { rowsOf, TENANT_A, TENANT_B } from '../support/db.ts';
import { auditRows, jwt, JWT_SECRET, setUp, type Setup, postQuery } from './helpers.ts';

let s: Setup;
let app: GatewayApp;
let token: string;
let bBefore: Awaited<ReturnType<typeof rowsOf>>;
before(async () => {
  s = await setUp({ agentWrite: true });
  app = createGateway({ pool: s.agentPool(), key: s.fence.key, auth: { jwtSecret: JWT_SECRET }, mode: 'write' });
  token = await jwt({ tenant_id: TENANT_A, sub: 'writer' }, { expiresIn: '5m' });
  bBefore = await rowsOf(s.db, TENANT_B);
});
after(async () => {
  await app.close();
  await s.db.drop();
});

const query = (sql: string, params?: unknown[], maxRows?: number) => postQuery(app, token, { sql, ...(params ? { params } : {}), ...(maxRows ? { maxRows } : {}) });
const assertBUntouched = async () => assert.deepEqual(await rowsOf(s.db, TENANT_B), bBefore);

test("UPDATE and DELETE aimed at B's rows affect 0 rows", async () => {
  const up = await query(`UPDATE conversations SET transcript = 'pwned' WHERE tenant_id = $1`, [TENANT_B]);
  assert.equal(up.status, 200);
  assert.equal(up.body.rowCount, 0);
  const byId = await query(`UPDATE conversations SET transcript = 'pwned' WHERE id = $1::bigint RETURNING id`, [bBefore[0]!.id]);
  assert.equal(byId.body.rowCount, 0);
  const del = await query(`DELETE FROM conversations WHERE tenant_id = $1`, [TENANT_B]);
  assert.equal(del.body.rowCount, 0);
  await assertBUntouched();
});

test('INSERT for B is refused by WITH CHECK; moving a row to B is refused too', async () => {
  const ins = await query(`INSERT INTO conversations (tenant_id, agent_id, transcript) VALUES ($1, gen_random_uuid(), 'planted')`, [TENANT_B]);
  assert.equal(ins.status, 400);
  assert.equal(ins.body.error.code, 'TF_PRIVILEGE');
  assert.equal(ins.body.error.sqlstate, '42501');
  const move = await query(`UPDATE conversations SET tenant_id = $1`, [TENANT_B]);
  assert.equal(move.status, 400);
  assert.equal(move.body.error.code, 'TF_PRIVILEGE');
  await assertBUntouched();
  assert.equal((await rowsOf(s.db, TENANT_A)).length, 3);
});

test('own writes work, with RETURNING', async () => {
  const ins = await query(`INSERT INTO conversations (tenant_id, agent_id, transcript) VALUES ($1, gen_random_uuid(), 'hello') RETURNING transcript`, [TENANT_A]);
  assert.equal(ins.status, 200);
  assert.deepEqual(ins.body.rows, [{ transcript: 'hello' }]);
  assert.equal(ins.body.rowCount, 1);
  const up = await query(`UPDATE conversations SET transcript = 'bye' WHERE transcript = 'hello'`);
  assert.equal(up.body.rowCount, 1);
  const del = await query(`DELETE FROM conversations WHERE transcript = 'bye'`);
  assert.equal(del.body.rowCount, 1);
  assert.equal((await rowsOf(s.db, TENANT_A)).length, 3);
});

test("an explicit value for a sequence-filled key is refused: no probe of B's ids, no squatting on B's next ones", async () => {
  const victim = bBefore[0]!;
  const next = BigInt(bBefore[bBefore.length - 1]!.id) + 10n;
  for (const [sql, params] of [
    [`INSERT INTO conversations (id, tenant_id, agent_id, transcript) VALUES ($1::bigint, $2, gen_random_uuid(), 'probe')`, [victim.id, TENANT_A]],
    [`INSERT INTO conversations (id, tenant_id, agent_id, transcript) VALUES ($1::bigint, $2, gen_random_uuid(), 'squat')`, [String(next), TENANT_A]],
    [`INSERT INTO conversations VALUES ($1::bigint, $2, gen_random_uuid(), 'no column list')`, [String(next), TENANT_A]],
    [`INSERT INTO conversations (tenant_id, agent_id) VALUES ($1, gen_random_uuid()) ON CONFLICT (id) DO UPDATE SET id = $2::bigint`, [TENANT_A, String(next)]],
    [`UPDATE conversations SET id = $1::bigint`, [String(next)]],
  ] as const) {
    const r = await query(sql, [...params]);
    assert.equal(r.status, 422, `${sql}: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.error.code, 'TF_SQL_REJECTED');
    assert.match(r.body.error.message, /filled from a sequence|must list its columns/);
  }
  const { rows } = await s.db.admin.query('SELECT count(*)::int AS n FROM conversations WHERE id IN ($1, $2)', [victim.id, String(next)]);
  assert.equal(rows[0].n, 1, "only B's own row holds those ids");
  const ok = await query(`INSERT INTO conversations (tenant_id, agent_id, transcript) VALUES ($1, gen_random_uuid(), 'numbered by the sequence') RETURNING transcript`, [TENANT_A]);
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  await s.db.admin.query("DELETE FROM conversations WHERE transcript = 'numbered by the sequence'");
  await assertBUntouched();
});

test('a failed write leaves nothing behind', async () => {
  const r = await query(`UPDATE conversations SET transcript = 'x' || (1 / (id - id))::text`);
  assert.equal(r.status, 400);
  assert.equal(r.body.error.sqlstate, '22012');
  assert.ok((await rowsOf(s.db, TENANT_A)).every((row) => row.transcript !== 'x'));
});

test('RETURNING a field selection of a system column is refused before the UPDATE runs', async () => {
  const aBefore = await rowsOf(s.db, TENANT_A);
  const r = await query(`UPDATE conversations c SET transcript = 'y' WHERE id = $1::bigint RETURNING (c).xmin, (c).ctid`, [aBefore[0]!.id]);
  assert.equal(r.status, 422);
  assert.equal(r.body.error.code, 'TF_SQL_REJECTED');
  assert.deepEqual(await rowsOf(s.db, TENANT_A), aBefore, 'nothing ran');
  await assertBUntouched();
});

test('a deferred unique violation at COMMIT is the statement\'s error: 400 with its SQLSTATE, recorded, nothing committed', async () => {
  await s.db.admin.query('ALTER TABLE conversations ADD CONSTRAINT one_transcript UNIQUE (tenant_id, transcript) DEFERRABLE INITIALLY DEFERRED');
  try {
    const aBefore = await rowsOf(s.db, TENANT_A);
    const sql = `INSERT INTO conversations (tenant_id, agent_id, transcript) VALUES ($1, gen_random_uuid(), $2) RETURNING id`;
    const r = await query(sql, [TENANT_A, aBefore[0]!.transcript]);
    assert.equal(r.status, 400, JSON.stringify(r.body));
    assert.equal(r.body.error.code, 'TF_CONSTRAINT');
    assert.equal(r.body.error.sqlstate, '23505');
    assert.ok(!JSON.stringify(r.body).includes('Key ('), 'no DETAIL');
    assert.deepEqual(await rowsOf(s.db, TENANT_A), aBefore);
    const record = (await auditRows(s.db)).find((row) => row.statement === sql);
    assert.deepEqual([record?.verdict, record?.error_code, record?.sqlstate], ['error', 'TF_CONSTRAINT', '23505']);
    // The connection whose scrub did not run was dropped; the next request gets a clean one.
    const next = await query('SELECT count(*)::int AS n FROM conversations');
    assert.deepEqual(next.body.rows, [{ n: 3 }]);
  } finally {
    await s.db.admin.query('ALTER TABLE conversations DROP CONSTRAINT one_transcript');
  }
  await assertBUntouched();
});

test('rowCount of a write is the rows it affected, also when the row cap cuts its RETURNING rows', async () => {
  const r = await query(`UPDATE conversations SET transcript = transcript RETURNING id`, undefined, 2);
  assert.equal(r.status, 200);
  assert.equal(r.body.rows.length, 2);
  assert.equal(r.body.truncated, true);
  assert.equal(r.body.truncatedBy, 'maxRows');
  assert.equal(r.body.rowCount, 3);
  const record = (await auditRows(s.db)).find((row) => row.statement === 'UPDATE conversations SET transcript = transcript RETURNING id');
  assert.equal(record?.row_count, 3);
  await assertBUntouched();
});

test('multiple statements stay refused in write mode', async () => {
  const r = await query(`UPDATE conversations SET transcript = 'a'; DELETE FROM conversations`);
  assert.equal(r.status, 422);
  assert.equal(r.body.error.code, 'TF_SQL_REJECTED');
  await assertBUntouched();
  assert.equal((await rowsOf(s.db, TENANT_A)).length, 3);
});
