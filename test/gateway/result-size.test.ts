/**
 * One row larger than the response cap: node-postgres buffers a protocol message whole, so a
 * 540 MB row once killed the gateway and a 200 MB one grew it past 550 MB. The frame guard
 * (agent-connection.ts) drops the connection when a message announces more than the cap; the
 * request gets a 4xx, the process lives on, the next request is served, and nothing commits.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createGateway, type GatewayApp } from '../../src/gateway/http.ts';
import { ResultTooLargeError } from '../../src/gateway/agent-connection.ts';
import { rowsOf, TENANT_A, TENANT_B } from '../support/db.ts';
import { jwt, JWT_SECRET, setUp, type Setup, postQuery } from './helpers.ts';

let s: Setup;
let reader: GatewayApp;
let writer: GatewayApp;
let token: string;
let bBefore: Awaited<ReturnType<typeof rowsOf>>;

const CAP = 1 << 20;
/** 4 x 8^8 characters = 64 MiB from allowlisted functions (repeat and lpad are not). */
const BIG = `${"replace(".repeat(8)}'xxxx'${", 'x', 'xxxxxxxx')".repeat(8)}`;

before(async () => {
  s = await setUp({ agentWrite: true });
  // The firewall's value budget (32 MiB) would refuse BIG; this file tests the gateway's own guard.
  const options = { key: s.fence.key, auth: { jwtSecret: JWT_SECRET }, maxResponseBytes: CAP, statementTimeoutMs: 20_000, maxValueBytes: 256 << 20 };
  reader = createGateway({ ...options, pool: s.agentPool({ max: 1 }), auditPool: s.agentPool() });
  writer = createGateway({ ...options, pool: s.agentPool({ max: 1 }), auditPool: s.agentPool(), mode: 'write' });
  token = await jwt({ tenant_id: TENANT_A, sub: 'big' }, { expiresIn: '5m' });
  bBefore = await rowsOf(s.db, TENANT_B);
});
after(async () => {
  await reader.close();
  await writer.close();
  await s.db.drop();
});

const query = (app: GatewayApp, sql: string) => postQuery(app, token, { sql });

async function recordOf(id: string | null) {
  const { rows } = await s.db.admin.query('SELECT verdict, error_code FROM tenantfence.audit_log WHERE request_id = $1', [id]);
  return rows[0];
}

/** Waits until no backend runs a statement whose text is LIKE `pattern`. */
async function backendGone(pattern: string) {
  for (let waited = 0; ; waited += 50) {
    const { rows } = await s.db.admin.query('SELECT 1 FROM pg_stat_activity WHERE query LIKE $1 AND pid <> pg_backend_pid()', [pattern]);
    if (rows.length === 0) return;
    assert.ok(waited < 30_000, 'the dropped connection\'s backend was still running after 30 s');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

test('a 64 MiB row under a 1 MiB cap: a 400 that says what to do, little memory, the next request served', async () => {
  // Warm up first: the parser's WASM, the type names and the first connection cost memory too.
  assert.equal((await query(reader, 'SELECT 1 AS one')).status, 200);
  // The peak of what JavaScript holds (heap and buffers), sampled while the row arrives.
  const held = () => { const m = process.memoryUsage(); return m.heapUsed + m.arrayBuffers; };
  const base = held();
  let peak = base;
  const sampler = setInterval(() => (peak = Math.max(peak, held())), 2);
  const r = await query(reader, `SELECT ${BIG} AS big`).finally(() => clearInterval(sampler));
  assert.equal(r.status, 400, JSON.stringify(r.body));
  assert.equal(r.body.error.code, 'TF_RESULT_TOO_LARGE');
  assert.match(r.body.error.message, /larger than the 1048576-byte response cap; select fewer or smaller columns/);
  // Without the guard pg buffers the whole 64 MiB message, then decodes it to a 64 MiB string.
  assert.ok(peak - base < 16 * 1024 * 1024, `the gateway held ${Math.round((peak - base) / 1048576)} MiB more at its peak`);
  assert.deepEqual(await recordOf(r.id), { verdict: 'error', error_code: 'TF_RESULT_TOO_LARGE' });
  // The pool has one connection: the broken one was replaced.
  const next = await query(reader, 'SELECT count(*)::int AS n FROM conversations');
  assert.equal(next.status, 200);
  assert.deepEqual(next.body.rows, [{ n: 3 }]);
});

test('rows under the cap still arrive, and the byte cap cuts the rest', async () => {
  // 2 KiB rows: about 500 fit in 1 MiB.
  const r = await query(reader, "SELECT replace(replace(replace('xxxx', 'x', 'xxxxxxxx'), 'x', 'xxxxxxxx'), 'x', 'xxxxxxxx') || g AS v FROM generate_series(1, 1000) g");
  assert.equal(r.status, 200);
  assert.equal(r.body.truncatedBy, 'maxBytes');
  assert.ok(r.body.rows.length > 400 && r.body.rows.length < 520, String(r.body.rows.length));
});

test('a write whose RETURNING row is too large is not committed', async () => {
  const before = await rowsOf(s.db, TENANT_A);
  const r = await query(writer, `UPDATE conversations SET transcript = 'overwritten' RETURNING ${BIG} AS big`);
  assert.equal(r.status, 400);
  assert.equal(r.body.error.code, 'TF_RESULT_TOO_LARGE');
  assert.deepEqual(await rowsOf(s.db, TENANT_A), before, 'nothing committed');
  assert.deepEqual(await rowsOf(s.db, TENANT_B), bBefore);
  assert.deepEqual(await recordOf(r.id), { verdict: 'error', error_code: 'TF_RESULT_TOO_LARGE' });
  // The server builds all RETURNING rows (3 x 64 MiB, spilled to disk) before it sends the first,
  // and reads them all out before it notices the closed socket; until its backend ends, its row
  // locks stand and a write to the same rows meets the 1 s lock timeout (on a busy host, it did).
  await backendGone('%RETURNING%replace(replace(%');
  const next = await query(writer, `UPDATE conversations SET transcript = transcript RETURNING id`);
  assert.equal(next.body.rowCount, 3, JSON.stringify(next.body));
});

test('without the firewall: the executor refuses the row and keeps its pool usable', async () => {
  const pool = s.agentPool({ max: 1 });
  const ex = s.executor({ pool, maxResponseBytes: CAP });
  await assert.rejects(ex.execute({ tenant: TENANT_A, sql: "SELECT repeat('x', 64 * 1024 * 1024) AS big", params: [] }), ResultTooLargeError);
  const r = await ex.execute({ tenant: TENANT_A, sql: 'SELECT 1 AS one', params: [] });
  assert.deepEqual(r.rows, [{ one: 1 }]);
});
