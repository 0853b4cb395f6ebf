/**
 * The executor without the firewall: every statement here goes straight to the database, so these
 * tests show what the database layer holds on its own (signed context, agent role, READ ONLY,
 * rollback, timeouts, caps, session scrub). Each attack is judged by tenant B's data afterwards.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { signContext } from '../../src/context/token.ts';
import { AuditLog } from '../../src/gateway/audit-log.ts';
import { RecordError } from '../../src/gateway/executor.ts';
import { rowsOf, TENANT_A, TENANT_B } from '../support/db.ts';
import { setUp, sqlstateOf, type Setup } from './helpers.ts';

let s: Setup;
let bBefore: Awaited<ReturnType<typeof rowsOf>>;
before(async () => {
  s = await setUp({ agentWrite: true });
  bBefore = await rowsOf(s.db, TENANT_B);
});
after(() => s.db.drop());

const assertBUntouched = async () => assert.deepEqual(await rowsOf(s.db, TENANT_B), bBefore);

for (const pipeline of [true, false]) {
  test(`reads see only the tenant's rows, with column types (pipeline=${pipeline})`, async () => {
    const ex = s.executor({ pool: s.agentPool({ pipeline } as object) });
    const r = await ex.execute({ tenant: TENANT_A, sql: 'SELECT id, tenant_id, transcript FROM conversations ORDER BY id', params: [] });
    assert.equal(r.rowCount, 3);
    assert.ok(r.rows.every((row) => row.tenant_id === TENANT_A));
    assert.deepEqual(r.columns, [{ name: 'id', type: 'bigint' }, { name: 'tenant_id', type: 'uuid' }, { name: 'transcript', type: 'text' }]);
    const b = await ex.execute({ tenant: TENANT_A, sql: 'SELECT * FROM conversations WHERE tenant_id = $1', params: [TENANT_B] });
    assert.equal(b.rowCount, 0);
  });
}

test('the row cap is enforced by the server and reported', async () => {
  const ex = s.executor({ maxRows: 10 });
  const started = Date.now();
  const r = await ex.execute({ tenant: TENANT_A, sql: 'SELECT generate_series(1, 50000000) AS g', params: [] });
  assert.equal(r.rows.length, 10);
  assert.equal(r.truncated, true);
  assert.equal(r.truncatedBy, 'maxRows');
  assert.ok(Date.now() - started < 1500, 'the server stopped at the cap instead of producing every row');
  const fewer = await ex.execute({ tenant: TENANT_A, sql: 'SELECT g FROM generate_series(1, 100) g', params: [], maxRows: 5 });
  assert.equal(fewer.rows.length, 5);
  const exact = await ex.execute({ tenant: TENANT_A, sql: 'SELECT g FROM generate_series(1, 10) g', params: [] });
  assert.equal(exact.truncated, false);
});

test('the byte cap cuts the rows that do not fit', async () => {
  const ex = s.executor({ maxResponseBytes: 10_000 });
  const r = await ex.execute({ tenant: TENANT_A, sql: "SELECT repeat('x', 1000) AS v FROM generate_series(1, 100)", params: [] });
  assert.equal(r.truncated, true);
  assert.equal(r.truncatedBy, 'maxBytes');
  assert.ok(r.rows.length > 0 && r.rows.length < 10);
  assert.ok(JSON.stringify(r.rows).length <= 10_000);
});

test('read mode: a write fails in the READ ONLY transaction, B unchanged', async () => {
  const ex = s.executor({ mode: 'read' });
  for (const sql of [`UPDATE conversations SET transcript = 'pwned'`, `DELETE FROM conversations`]) {
    await assert.rejects(ex.execute({ tenant: TENANT_A, sql, params: [] }), (e) => sqlstateOf(e) === '25006');
  }
  const cte = 'WITH d AS (DELETE FROM conversations RETURNING 1) SELECT count(*) FROM d';
  await assert.rejects(ex.execute({ tenant: TENANT_A, sql: cte, params: [] }), (e) => sqlstateOf(e) === '25006');
  await assertBUntouched();
  assert.equal((await rowsOf(s.db, TENANT_A)).length, 3);
});

test('a read with its record first: both commit together, the statement still cannot write, a refused record fails it', async () => {
  const ex = s.executor({ mode: 'read' });
  const log = new AuditLog({ pool: s.agentPool(), key: s.fence.key, redaction: 'full' });
  const record = (statement: string) => {
    const requestId = randomUUID();
    return { requestId, query: log.statement({ requestId, tenant: TENANT_A, principal: 'p', fingerprint: 'f', statement, verdict: 'ok' }) };
  };
  const stored = async (id: string) => (await s.db.admin.query('SELECT verdict, statement, row_count FROM tenantfence.audit_log WHERE request_id = $1', [id])).rows;
  const read = 'SELECT count(*)::int AS n FROM conversations';
  const ok = record(read);
  assert.deepEqual((await ex.execute({ tenant: TENANT_A, sql: read, params: [], recordFirst: ok.query })).rows, [{ n: 3 }]);
  assert.deepEqual(await stored(ok.requestId), [{ verdict: 'ok', statement: read, row_count: null }]);
  // The transaction wrote the record, then turned read-only: the statement after it cannot write,
  // and its failure takes the record with it (the gateway then records the error on its own).
  for (const sql of [`UPDATE conversations SET transcript = 'pwned'`, 'WITH d AS (DELETE FROM conversations RETURNING 1) SELECT count(*) FROM d', "SELECT set_config('transaction_read_only', 'off', true)"]) {
    const r = record(sql);
    await assert.rejects(ex.execute({ tenant: TENANT_A, sql, params: [], recordFirst: r.query }), (e) => sqlstateOf(e) === '25006' || sqlstateOf(e) === '25001', sql);
    assert.deepEqual(await stored(r.requestId), [], sql);
  }
  await assertBUntouched();
  assert.equal((await rowsOf(s.db, TENANT_A)).length, 3);
  // A record the database refuses (a wrong MAC) fails the read: no rows without the record.
  const forged = record(read);
  const refused = { ...forged.query, values: [forged.query.values![0], '0'.repeat(64)] };
  await assert.rejects(ex.execute({ tenant: TENANT_A, sql: read, params: [], recordFirst: refused }), RecordError);
  assert.deepEqual(await stored(forged.requestId), []);
});

test('forging or switching the context from SQL reads nothing of B', async () => {
  const ex = s.executor();
  const forged = signContext({ kid: s.fence.key.kid, secret: Buffer.alloc(32, 7) }, TENANT_B);
  const attempts = [
    `SELECT set_config('tenantfence.context', '${forged}', true) AS x, (SELECT count(*) FROM conversations WHERE tenant_id = '${TENANT_B}') AS n`,
    `SELECT (SELECT set_config('tenantfence.context', replace(current_setting('tenantfence.context'), '${TENANT_A}', '${TENANT_B}'), true)) AS x, (SELECT count(*) FROM conversations) AS n`,
  ];
  for (const sql of attempts) {
    const r = await ex.execute({ tenant: TENANT_A, sql, params: [] });
    assert.ok(Number(r.rows[0]!.n) <= 3);
    const again = await ex.execute({ tenant: TENANT_A, sql: 'SELECT count(*)::int AS n FROM conversations WHERE tenant_id = $1', params: [TENANT_B] });
    assert.equal(again.rows[0]!.n, 0);
  }
});

test('several statements in one string never run (extended protocol)', async () => {
  const ex = s.executor({ mode: 'write' });
  for (const sql of ['SELECT 1; DELETE FROM conversations', 'COMMIT; DELETE FROM conversations', 'SELECT 1; DROP TABLE conversations']) {
    await assert.rejects(ex.execute({ tenant: TENANT_A, sql, params: [] }), (e) => sqlstateOf(e) === '42601');
  }
  await assertBUntouched();
  assert.equal((await rowsOf(s.db, TENANT_A)).length, 3);
});

test('write mode: UPDATE and DELETE reach only the tenant, INSERT for B fails WITH CHECK', async () => {
  const ex = s.executor({ mode: 'write' });
  const up = await ex.execute({ tenant: TENANT_A, sql: `UPDATE conversations SET transcript = transcript WHERE tenant_id = $1`, params: [TENANT_B] });
  assert.equal(up.rowCount, 0);
  const del = await ex.execute({ tenant: TENANT_A, sql: 'DELETE FROM conversations WHERE tenant_id <> $1 RETURNING id', params: [TENANT_A] });
  assert.equal(del.rowCount, 0);
  await assert.rejects(
    ex.execute({ tenant: TENANT_A, sql: 'INSERT INTO conversations (tenant_id, agent_id) VALUES ($1, gen_random_uuid())', params: [TENANT_B] }),
    (e) => sqlstateOf(e) === '42501',
  );
  await assertBUntouched();
  const ins = await ex.execute({ tenant: TENANT_A, sql: `INSERT INTO conversations (tenant_id, agent_id, transcript) VALUES ($1, gen_random_uuid(), 'new') RETURNING transcript`, params: [TENANT_A] });
  assert.deepEqual(ins.rows, [{ transcript: 'new' }]);
  assert.equal((await rowsOf(s.db, TENANT_A)).length, 4);
  await s.db.admin.query(`DELETE FROM conversations WHERE transcript = 'new'`);
});

for (const pipeline of [true, false]) {
  test(`write mode appends the record inside the transaction, before COMMIT (pipeline=${pipeline})`, async () => {
    const ex = s.executor({ pool: s.agentPool({ pipeline } as object), mode: 'write' });
    const [row] = await rowsOf(s.db, TENANT_A);
    const marker = `recorded-${pipeline}`;
    // A stand-in record: any statement the caller wants in the transaction after the result.
    const record = (r: { rowCount: number }) => ({ text: 'UPDATE conversations SET transcript = $1 WHERE id = $2', values: [`${marker}:${r.rowCount}`, row!.id] });
    const r = await ex.execute({ tenant: TENANT_A, sql: 'UPDATE conversations SET transcript = transcript RETURNING id', params: [], kind: 'update', record });
    assert.equal(r.rowCount, 3);
    assert.equal((await rowsOf(s.db, TENANT_A)).find((x) => x.id === row!.id)?.transcript, `${marker}:3`, 'ran in the committed transaction');
    // A failed statement skips the record and rolls back; the connection stays usable.
    await assert.rejects(ex.execute({ tenant: TENANT_A, sql: 'UPDATE conversations SET transcript = (1 / 0)::text', params: [], kind: 'update', record }), (e) => sqlstateOf(e) === '22012');
    // A failed record rolls the write back.
    const failing = () => ({ text: 'SELECT 1 / 0', values: [] });
    await assert.rejects(ex.execute({ tenant: TENANT_A, sql: `UPDATE conversations SET transcript = 'never'`, params: [], kind: 'update', record: failing }), { name: 'RecordError' });
    assert.ok((await rowsOf(s.db, TENANT_A)).every((x) => x.transcript !== 'never'));
    await s.db.admin.query('UPDATE conversations SET transcript = $1 WHERE id = $2', [row!.transcript, row!.id]);
    await assertBUntouched();
  });
}

test('a failed write rolls back', async () => {
  const ex = s.executor({ mode: 'write' });
  await assert.rejects(
    ex.execute({ tenant: TENANT_A, sql: `UPDATE conversations SET transcript = 'x' || (1 / (id - id))::text`, params: [] }),
    (e) => sqlstateOf(e) === '22012',
  );
  assert.ok((await rowsOf(s.db, TENANT_A)).every((r) => r.transcript !== 'x'));
});

test('statement_timeout holds without the firewall', async () => {
  const ex = s.executor({ statementTimeoutMs: 200 });
  const started = Date.now();
  await assert.rejects(ex.execute({ tenant: TENANT_A, sql: 'SELECT pg_sleep(5)', params: [] }), (e) => sqlstateOf(e) === '57014');
  assert.ok(Date.now() - started < 2000);
});

test('session state left by one request does not reach the next', async () => {
  const pool = s.agentPool({ max: 1 });
  const ex = s.executor({ pool, mode: 'write' });
  await ex.execute({
    tenant: TENANT_A,
    sql: `SELECT set_config('tenantfence.context', current_setting('tenantfence.context'), false), set_config('search_path', 'pg_catalog', false),
                 set_config('statement_timeout', '0', false), pg_advisory_lock(42), set_config('role', current_user, false)`,
    params: [],
  });
  await ex.execute({ tenant: TENANT_A, sql: 'DECLARE held CURSOR WITH HOLD FOR SELECT * FROM conversations', params: [] });
  const client = await pool.connect();
  try {
    const { rows } = await client.query(`SELECT current_setting('tenantfence.context', true) AS ctx, current_setting('search_path') AS path,
      current_setting('statement_timeout') AS st, (SELECT count(*)::int FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()) AS locks,
      (SELECT count(*)::int FROM pg_cursors) AS cursors, (SELECT count(*)::int FROM conversations) AS visible,
      current_setting('role') AS role, session_user = current_user AS same`);
    assert.deepEqual(rows[0], { ctx: '', path: '"$user", public', st: '0', locks: 0, cursors: 0, visible: 0, role: 'none', same: true });
  } finally {
    client.release();
  }
});

test('EXPLAIN runs READ ONLY and rolls back even in write mode; it never executes the statement', async () => {
  const ex = s.executor({ mode: 'write' });
  const r = await ex.execute({ tenant: TENANT_A, sql: 'DELETE FROM conversations', params: [], explain: true });
  assert.equal(r.command, 'EXPLAIN');
  assert.match(String(r.rows[0]!['QUERY PLAN']), /Delete on conversations/);
  assert.ok(!JSON.stringify(r.rows).match(/rows=|cost=/), 'no estimates');
  assert.equal((await rowsOf(s.db, TENANT_A)).length, 3);
  await assertBUntouched();
});

test('after a read, prepared statements and advisory locks are gone too', async () => {
  const pool = s.agentPool({ max: 1 });
  const ex = s.executor({ pool });
  await ex.execute({ tenant: TENANT_A, sql: 'SELECT pg_advisory_lock(7)', params: [] });
  await ex.execute({ tenant: TENANT_A, sql: 'PREPARE leftover AS SELECT * FROM conversations', params: [] });
  const client = await pool.connect();
  try {
    const { rows } = await client.query(`SELECT (SELECT count(*)::int FROM pg_prepared_statements) AS prepared,
      (SELECT count(*)::int FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()) AS locks,
      current_setting('tenantfence.context', true) AS ctx`);
    assert.deepEqual(rows[0], { prepared: 0, locks: 0, ctx: '' });
  } finally {
    client.release();
  }
});
