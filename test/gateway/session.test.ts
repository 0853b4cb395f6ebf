/**
 * The settings the agent's statement is parsed and resolved under, attacked through the server's
 * own configuration: a role default that turns standard_conforming_strings off, functions planted
 * on the search path under names the firewall allows (or that PostgreSQL 18 parses as SQL/JSON
 * syntax), and a search_path that puts other schemas before pg_catalog. Runs on whatever server
 * the suite runs on (PostgreSQL 15 and 17 in CI), and asserts what that version must do.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createGateway, type GatewayApp } from '../../src/gateway/http.ts';
import { ident } from '../../src/sql/quote.ts';
import { rowsOf, TENANT_A, TENANT_B } from '../support/db.ts';
import { auditRows, jwt, JWT_SECRET, setUp, type Setup, postQuery } from './helpers.ts';

let s: Setup;
let token: string;
let version: number;
let bBefore: Awaited<ReturnType<typeof rowsOf>>;
const opened: GatewayApp[] = [];

before(async () => {
  s = await setUp();
  token = await jwt({ tenant_id: TENANT_A, sub: 'session' }, { expiresIn: '5m' });
  version = Number((await s.db.admin.query('SHOW server_version_num')).rows[0].server_version_num);
  bBefore = await rowsOf(s.db, TENANT_B);
  // Planted by a role that may create functions in public: each would sleep if the agent ran it.
  await s.db.admin.query(`CREATE FUNCTION public.json_scalar(text) RETURNS text LANGUAGE sql AS $$ SELECT pg_sleep(1.5)::text || 'planted' $$`);
  await s.db.admin.query(`CREATE FUNCTION public.json_arrayagg(text) RETURNS text LANGUAGE sql AS $$ SELECT pg_sleep(1.5)::text || 'planted' $$`);
  await s.db.admin.query(`CREATE FUNCTION public.any_value(text) RETURNS text LANGUAGE sql AS $$ SELECT pg_sleep(1.5)::text || 'planted' $$`);
  await s.db.admin.query(`CREATE FUNCTION public.lower(varchar) RETURNS text LANGUAGE sql AS $$ SELECT pg_sleep(1.5)::text || 'planted' $$`);
  await s.db.admin.query('GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO PUBLIC');
});
after(async () => {
  await Promise.all(opened.map((app) => app.close()));
  await s.db.drop();
});

/** A gateway on a fresh pool, so role defaults changed by the test apply to its connections. */
async function gateway(): Promise<GatewayApp> {
  const app = createGateway({ pool: s.agentPool(), key: s.fence.key, auth: { jwtSecret: JWT_SECRET }, statementTimeoutMs: 4000 });
  opened.push(app);
  await app.service.start();
  return app;
}

const query = (app: GatewayApp, sql: string) => postQuery(app, token, { sql });

const agent = () => ident(s.db.roles.agent);

test('standard_conforming_strings off as a role default: the statement is still read as the firewall read it', async () => {
  await s.db.admin.query(`ALTER ROLE ${agent()} SET standard_conforming_strings = off`);
  try {
    const app = await gateway();
    const sql = "SELECT '\\' AS a, ' , pg_sleep(2)::text AS slept --' AS b";
    const r = await query(app, sql);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body.rows, [{ a: '\\', b: ' , pg_sleep(2)::text AS slept --' }], 'two literals, no call');
    assert.deepEqual(r.body.columns.map((c: { name: string }) => c.name), ['a', 'b']);
    assert.ok(r.ms < 1500, `pg_sleep did not run (${r.ms} ms)`);
    assert.equal((await auditRows(s.db)).find((row) => row.statement === sql)?.verdict, 'ok');
  } finally {
    await s.db.admin.query(`ALTER ROLE ${agent()} RESET standard_conforming_strings`);
  }
});

test('SQL/JSON syntax the server lacks is refused; where it has it, the real one runs, not the planted function', async () => {
  const app = await gateway();
  for (const [sql, since, expected] of [
    ["SELECT json_scalar('x'::text) AS j", 170000, 'x'],
    ["SELECT json_arrayagg(transcript)::text AS j FROM conversations WHERE false", 160000, null],
  ] as const) {
    const r = await query(app, sql);
    if (version < since) {
      assert.equal(r.status, 422, sql);
      assert.match(r.body.error.message, /needs PostgreSQL 1[67], and this database runs 15/);
    } else {
      assert.equal(r.status, 200, `${sql}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.rows[0].j, expected, sql);
    }
    assert.ok(r.ms < 1500, `the planted function did not run (${r.ms} ms)`);
  }
});

test('an allowlisted name that another schema on the path also defines is refused, on every version', async () => {
  const app = await gateway();
  for (const sql of ['SELECT any_value(transcript) AS v FROM conversations', "SELECT lower('X'::varchar) AS v"]) {
    const r = await query(app, sql);
    assert.equal(r.status, 422, `${sql}: ${JSON.stringify(r.body)}`);
    assert.match(r.body.error.message, /is not available on this database/);
    assert.ok(r.ms < 1500);
  }
  const fine = await query(app, "SELECT upper('x') AS v");
  assert.deepEqual(fine.body.rows, [{ v: 'X' }]);
});

test("an extension's functions shadow nothing: citext's replace() stays allowed", async () => {
  await s.db.admin.query('CREATE EXTENSION IF NOT EXISTS citext SCHEMA public');
  const app = await gateway();
  const r = await query(app, "SELECT replace('AbA'::citext, 'a', 'x') AS v");
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual(r.body.rows, [{ v: 'xbx' }], 'citext.replace, which matches case-insensitively');
});

test('functions newer than the server are not allowed; on a server that has them they run', async () => {
  const app = await gateway();
  const r = await query(app, 'SELECT gen_random_uuid() IS NOT NULL AS a, array_length(array_sample(ARRAY[1, 2, 3], 2), 1) AS n');
  if (version < 160000) {
    assert.equal(r.status, 422);
    assert.match(r.body.error.message, /array_sample\(\) is not available on this database \(PostgreSQL 15/);
  } else {
    assert.deepEqual(r.body.rows, [{ a: true, n: 2 }]);
  }
});

test('the search_path is pinned: pg_catalog first, no tenantfence, whatever the role default', async () => {
  await s.db.admin.query(`ALTER ROLE ${agent()} SET search_path = public, tenantfence, pg_catalog`);
  try {
    const ex = s.executor(); // the firewall is skipped: what the database session itself does
    const r = await ex.execute({ tenant: TENANT_A, sql: "SELECT current_setting('search_path') AS path, lower('X'::varchar) AS v, current_setting('standard_conforming_strings') AS scs", params: [] });
    assert.deepEqual(r.rows, [{ path: 'pg_catalog, "public", pg_temp', v: 'planted', scs: 'on' }]);
    // Overload resolution still prefers the exact varchar match in public: hence the firewall
    // takes shadowed names out of the allowlist (above), and the pinned path is the second layer.
    await assert.rejects(ex.execute({ tenant: TENANT_A, sql: 'SELECT * FROM audit_log', params: [] }), (e: any) => e.sqlstate === '42P01');
    assert.deepEqual(await rowsOf(s.db, TENANT_B), bBefore);
  } finally {
    await s.db.admin.query(`ALTER ROLE ${agent()} RESET search_path`);
  }
});
