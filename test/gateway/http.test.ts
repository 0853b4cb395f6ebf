/**
 * The REST gateway in-process (`app.request()`), against real PostgreSQL as the agent role.
 * Every attack ends by comparing tenant B's rows with the ground truth taken before it.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createGateway, type GatewayApp } from '../../src/gateway/http.ts';
import { rowsOf, TENANT_A, TENANT_B } from '../support/db.ts';
import { auditRows, jwt, JWT_SECRET, setUp, type Setup } from './helpers.ts';

let s: Setup;
let app: GatewayApp;
let tokenA: string;
let bBefore: Awaited<ReturnType<typeof rowsOf>>;

before(async () => {
  s = await setUp();
  // Limits are tested in limits.test.ts; here they would only make the request count matter.
  const limits = { burst: 1000, ratePerSecond: 1000 };
  app = createGateway({ pool: s.agentPool(), key: s.fence.key, auth: { jwtSecret: JWT_SECRET }, maxRows: 50, statementTimeoutMs: 1000, limits });
  tokenA = await jwt({ tenant_id: TENANT_A, sub: 'agent-a' }, { expiresIn: '5m' });
  bBefore = await rowsOf(s.db, TENANT_B);
});
after(async () => {
  await app.close();
  await s.db.drop();
});

const METRICS_TOKEN = 'metrics-token-of-the-scraper';

async function query(body: unknown, token: string | null = tokenA, init: RequestInit = {}, gateway: GatewayApp = app) {
  const res = await gateway.request('/v1/query', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    ...init,
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as any };
}

const assertBUntouched = async () => assert.deepEqual(await rowsOf(s.db, TENANT_B), bBefore);

test('ordinary agent queries work: joins, aggregates, CTEs, windows, ILIKE, JSON', async () => {
  const statements = [
    ['SELECT count(*)::int AS n FROM conversations', [{ n: 3 }]],
    [`SELECT a.id FROM conversations a JOIN conversations b ON a.agent_id = b.agent_id ORDER BY a.id`, 3],
    [`WITH recent AS (SELECT * FROM conversations ORDER BY created_at DESC LIMIT 2) SELECT count(*)::int AS n FROM recent`, [{ n: 2 }]],
    [`SELECT id, row_number() OVER (ORDER BY id) AS rn, count(*) OVER () AS total FROM conversations`, 3],
    [`SELECT count(*)::int AS n FROM conversations WHERE transcript ILIKE '%SECRET%'`, [{ n: 3 }]],
    [`SELECT jsonb_build_object('t', transcript)->>'t' AS t FROM conversations WHERE ($1::jsonb ->> 'k') = 'v' LIMIT 1`, 1, [{ k: 'v' }]],
    [`SELECT tenant_id, count(*)::int AS n FROM conversations GROUP BY tenant_id HAVING count(*) > 0`, [{ tenant_id: TENANT_A, n: 3 }]],
  ] as const;
  for (const [sql, expected, params] of statements) {
    const r = await query({ sql, ...(params ? { params } : {}) });
    assert.equal(r.status, 200, `${sql}: ${JSON.stringify(r.body)}`);
    if (typeof expected === 'number') assert.equal(r.body.rowCount, expected, sql);
    else assert.deepEqual(r.body.rows, expected, sql);
    assert.equal(typeof r.body.durationMs, 'number');
  }
});

test('the response shape: columns with type names, rowCount, truncated', async () => {
  const r = await query({ sql: 'SELECT id, tenant_id, created_at FROM conversations ORDER BY id', maxRows: 2 });
  assert.equal(r.status, 200);
  assert.deepEqual(r.body.columns, [{ name: 'id', type: 'bigint' }, { name: 'tenant_id', type: 'uuid' }, { name: 'created_at', type: 'timestamp with time zone' }]);
  assert.equal(r.body.rows.length, 2);
  assert.equal(r.body.rowCount, 2);
  assert.equal(r.body.truncated, true);
  assert.match(r.headers.get('X-Request-Id') ?? '', /^[0-9a-f-]{36}$/);
  const capped = await query({ sql: 'SELECT generate_series(1, 10000) AS g' });
  assert.equal(capped.body.rows.length, 50);
  assert.equal(capped.body.truncated, true);
});

test("tenant B's rows cannot be read by naming B", async () => {
  for (const sql of [
    `SELECT * FROM conversations WHERE tenant_id = '${TENANT_B}'`,
    `SELECT * FROM conversations WHERE tenant_id <> '${TENANT_A}' OR true`,
    `SELECT c.* FROM conversations c JOIN LATERAL (SELECT 1 FROM conversations c2 WHERE c2.tenant_id = '${TENANT_B}') x ON true`,
  ]) {
    const r = await query({ sql });
    assert.equal(r.status, 200, sql);
    assert.ok(r.body.rows.every((row: { tenant_id: string }) => row.tenant_id === TENANT_A), sql);
    assert.ok(!JSON.stringify(r.body.rows).includes('secret of ' + TENANT_B), sql);
  }
  const counted = await query({ sql: `SELECT count(*)::int AS n FROM conversations WHERE tenant_id = '${TENANT_B}'` });
  assert.deepEqual(counted.body.rows, [{ n: 0 }]);
  await assertBUntouched();
});

test('refused statements: 422 TF_SQL_REJECTED, nothing runs, B unchanged', async () => {
  for (const sql of [
    'SELECT 1; DROP TABLE conversations',
    `SELECT set_config('tenantfence.context', 'v1.x.${TENANT_B}.9999999999..00', true)`,
    `DELETE FROM conversations`,
  ]) {
    const r = await query({ sql });
    assert.equal(r.status, 422, sql);
    assert.equal(r.body.error.code, 'TF_SQL_REJECTED');
    assert.equal(typeof r.body.error.message, 'string');
  }
  await assertBUntouched();
  assert.equal((await rowsOf(s.db, TENANT_A)).length, 3);
});

test('system columns and transaction ids are refused in every spelling, and each refusal is audited', async () => {
  const attacks = [
    'SELECT (c).xmin AS x, (c).ctid AS t, (c).cmax AS m FROM conversations c',
    'SELECT (c.*).xmin FROM conversations c',
    "SELECT age('3'::xid)",
    'SELECT xmin(c) FROM conversations c',
  ];
  for (const sql of attacks) {
    const r = await query({ sql });
    assert.equal(r.status, 422, sql);
    assert.equal(r.body.error.reason, 'other');
    assert.ok(!JSON.stringify(r.body).match(/\(\d+,\d+\)|"x"|"m"/), 'no tuple position or transaction id in the reply');
  }
  const records = await auditRows(s.db);
  for (const sql of attacks) assert.equal(records.find((row) => row.statement === sql)?.verdict, 'rejected', sql);
  // What stays allowed holds no system column: Postgres leaves them out of whole-row values.
  const whole = await query({ sql: 'SELECT row_to_json(c) AS j, to_jsonb(c) AS b FROM conversations c LIMIT 1' });
  assert.equal(whole.status, 200);
  const keys = ['agent_id', 'created_at', 'id', 'tenant_id', 'transcript'];
  assert.deepEqual(Object.keys(whole.body.rows[0].j).sort(), keys);
  assert.deepEqual(Object.keys(whole.body.rows[0].b).sort(), keys);
  await assertBUntouched();
});

test('credentials: missing, malformed, wrong key, expired, no exp, no tenant → 401, nothing runs', async () => {
  const before = (await auditRows(s.db)).length;
  const cases = [
    null,
    'not-a-jwt',
    await jwt({ tenant_id: TENANT_A }, { expiresIn: '5m', secret: 'another-secret-of-at-least-thirty-two-bytes' }),
    await jwt({ tenant_id: TENANT_A }, { expiresIn: Math.floor(Date.now() / 1000) - 60 }),
    await jwt({ tenant_id: TENANT_A }),
    await jwt({ sub: 'nobody' }, { expiresIn: '5m' }),
    await jwt({ tenant_id: "x' OR 1=1" }, { expiresIn: '5m' }),
  ];
  for (const token of cases) {
    const r = await query({ sql: 'SELECT 1' }, token);
    assert.equal(r.status, 401, String(token));
    assert.equal(r.body.error.code, 'TF_UNAUTHENTICATED');
    assert.equal(r.headers.get('WWW-Authenticate'), 'Bearer');
  }
  const schema = await app.request('/v1/schema');
  assert.equal(schema.status, 401);
  assert.equal((await auditRows(s.db)).length, before, 'nothing was run or audited');
});

test('bad input: 4xx JSON with a code, nothing executed', async () => {
  const before = (await auditRows(s.db)).length;
  const cases: Array<[unknown, number, string]> = [
    ['{"sql": ', 400, 'TF_BAD_REQUEST'],
    [[1, 2], 400, 'TF_BAD_REQUEST'],
    [{ sql: 42 }, 400, 'TF_BAD_REQUEST'],
    [{ sql: '   ' }, 400, 'TF_BAD_REQUEST'],
    [{ sql: 'SELECT 1', params: 'x' }, 400, 'TF_BAD_REQUEST'],
    [{ sql: 'SELECT 1', maxRows: 0 }, 400, 'TF_BAD_REQUEST'],
    [{ sql: 'SELECT 1', maxRows: 1.5 }, 400, 'TF_BAD_REQUEST'],
    [{ sql: 'SELECT 1', param: [] }, 400, 'TF_BAD_REQUEST'],
    [{ sql: `SELECT '${'x'.repeat(70_000)}'` }, 413, 'TF_PAYLOAD_TOO_LARGE'],
    [{ sql: 'SELECT 1', params: ['y'.repeat(300_000)] }, 413, 'TF_PAYLOAD_TOO_LARGE'],
  ];
  for (const [body, status, code] of cases) {
    const r = await query(body);
    assert.equal(r.status, status, JSON.stringify(body).slice(0, 60));
    assert.equal(r.body.error.code, code);
  }
  const chunked = await app.request('/v1/query', {
    method: 'POST',
    headers: { Authorization: `Bearer ${tokenA}` },
    body: new ReadableStream({ pull: (c) => c.enqueue(new TextEncoder().encode('x'.repeat(65_536))) }),
    duplex: 'half',
  } as RequestInit);
  assert.equal(chunked.status, 413, 'a body without Content-Length is cut at the cap, not read to the end');
  assert.equal((await auditRows(s.db)).length, before, 'nothing reached the firewall or the database');
  const mismatch = await query({ sql: 'SELECT $1::int + $2::int AS n', params: [1] });
  assert.equal(mismatch.status, 400);
  assert.equal(mismatch.body.error.code, 'TF_BAD_REQUEST');
  for (const [method, path] of [['GET', '/nope'], ['GET', '/v1/query'], ['DELETE', '/v1/schema']] as const) {
    const res = await app.request(path, { method, headers: { Authorization: `Bearer ${tokenA}` } });
    assert.equal(res.status, 404, `${method} ${path}`);
    assert.equal(((await res.json()) as any).error.code, 'TF_NOT_FOUND');
  }
});

test('database errors: 400 with a TF code and the SQLSTATE, no DETAIL', async () => {
  const r = await query({ sql: 'SELECT nope FROM conversations' });
  assert.equal(r.status, 400);
  assert.equal(r.body.error.code, 'TF_SQL_INVALID');
  assert.equal(r.body.error.sqlstate, '42703');
  assert.match(r.body.error.message, /column "nope" does not exist/);
  const timeout = await query({ sql: 'SELECT count(*) FROM generate_series(1, 100000000)' });
  assert.equal(timeout.status, 400);
  assert.equal(timeout.body.error.code, 'TF_QUERY_TIMEOUT');
});

test('GET /v1/schema lists what the agent may query and says tenant filtering is automatic', async () => {
  const res = await app.request('/v1/schema', { headers: { Authorization: `Bearer ${tokenA}` } });
  assert.equal(res.status, 200);
  const body = (await res.json()) as any;
  assert.match(body.note, /automatic/);
  assert.deepEqual(body.tables.map((t: any) => `${t.schema}.${t.name}`), ['public.conversations']);
  const t = body.tables[0];
  assert.equal(t.tenantScoped, true);
  assert.deepEqual(t.privileges, ['SELECT']);
  assert.deepEqual(t.columns.map((c: any) => [c.name, c.type]), [
    ['id', 'bigint'], ['tenant_id', 'uuid'], ['agent_id', 'uuid'], ['transcript', 'text'], ['created_at', 'timestamp with time zone'],
  ]);
});

test('no free connection in time: 503 after connectTimeoutMs, with its record; the pool recovers', async () => {
  const pool = s.agentPool({ max: 1 });
  const busy = createGateway({ pool, auditPool: s.agentPool(), key: s.fence.key, auth: { jwtSecret: JWT_SECRET }, connectTimeoutMs: 200 });
  try {
    await busy.service.start();
    const held = await pool.connect();
    const started = Date.now();
    const res = await busy.request('/v1/query', { method: 'POST', headers: { Authorization: `Bearer ${tokenA}` }, body: JSON.stringify({ sql: 'SELECT 1 AS one' }) });
    const body = (await res.json()) as any;
    assert.equal(res.status, 503);
    assert.equal(body.error.code, 'TF_DATABASE');
    assert.match(body.error.message, /No database connection became free within 200 ms/);
    assert.ok(Date.now() - started < 2000);
    const record = (await auditRows(s.db)).find((r) => r.statement === 'SELECT 1 AS one' && r.verdict === 'error');
    assert.equal(record?.error_code, 'TF_DATABASE');
    held.release();
    const again = await busy.request('/v1/query', { method: 'POST', headers: { Authorization: `Bearer ${tokenA}` }, body: JSON.stringify({ sql: 'SELECT 2 AS two' }) });
    assert.equal(again.status, 200);
  } finally {
    await busy.close();
  }
});

test('the database down: /v1/schema and /healthz answer 503, not 500', async () => {
  const down = createGateway({ agentDatabaseUrl: 'postgres://nobody@127.0.0.1:1/none', key: s.fence.key, auth: { jwtSecret: JWT_SECRET }, connectTimeoutMs: 500 });
  try {
    const schema = await down.request('/v1/schema', { headers: { Authorization: `Bearer ${tokenA}` } });
    assert.equal(schema.status, 503);
    assert.equal(((await schema.json()) as any).error.code, 'TF_CONNECTION');
    assert.equal((await down.request('/healthz')).status, 503);
    const q = await down.request('/v1/query', { method: 'POST', headers: { Authorization: `Bearer ${tokenA}` }, body: JSON.stringify({ sql: 'SELECT 1' }) });
    assert.equal(q.status, 503);
  } finally {
    await down.close();
  }
});

test('healthz, and metrics only for the metrics token', async () => {
  const h = await app.request('/healthz');
  assert.equal(h.status, 200);
  // Without a metrics token the agent listener has no /metrics: every tenant's volume is not theirs to read.
  assert.equal((await app.request('/metrics')).status, 404);
  const scraped = createGateway({ pool: s.agentPool(), key: s.fence.key, auth: { jwtSecret: JWT_SECRET }, metricsToken: METRICS_TOKEN });
  try {
    assert.equal((await scraped.request('/metrics')).status, 401);
    assert.equal((await scraped.request('/metrics', { headers: { Authorization: `Bearer ${tokenA}` } })).status, 401, "a tenant's JWT is not the metrics token");
    await query({ sql: 'SELECT 1' }, tokenA, {}, scraped);
    await query({ sql: 'SELECT 1' }, null, {}, scraped);
  } finally {
    await scraped.close();
  }
  const m = await scraped.request('/metrics', { headers: { Authorization: `Bearer ${METRICS_TOKEN}` } });
  assert.equal(m.status, 200);
  const text = await m.text();
  assert.match(text, /tenantfence_gateway_requests_total\{route="\/v1\/query",status="200"\} \d+/);
  assert.match(text, /tenantfence_gateway_rejections_total\{reason="unauthenticated"\} \d+/);
  assert.match(text, /tenantfence_gateway_request_duration_seconds_bucket\{le="\+Inf"\} \d+/);
  assert.match(text, /tenantfence_gateway_pool_connections\{pool="agent",state="total"\} \d+/);
  assert.ok(!text.includes(TENANT_A), 'no tenant ids in metrics');
});

test('every statement is audited with tenant, principal, verdict; 401s are not', async () => {
  const rows = await auditRows(s.db);
  assert.ok(rows.length > 0);
  assert.ok(rows.every((r) => r.tenant_id === TENANT_A && r.principal === 'agent-a'));
  const rejected = rows.find((r) => r.statement === 'SELECT 1; DROP TABLE conversations');
  assert.equal(rejected?.verdict, 'rejected');
  assert.equal(rejected?.error_code, 'TF_SQL_REJECTED');
  const failed = rows.find((r) => r.statement === 'SELECT nope FROM conversations');
  assert.equal(failed?.verdict, 'error');
  assert.equal(failed?.sqlstate, '42703');
  // A read's record is written in its own transaction before it runs: no row count.
  assert.ok(rows.some((r) => r.verdict === 'ok' && r.statement === 'SELECT count(*)::int AS n FROM conversations' && r.row_count === null));
});
