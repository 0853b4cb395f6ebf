import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { init } from '../../src/cli/commands/init.ts';
import { protect } from '../../src/cli/commands/protect.ts';
import { ErrorCodes } from '../../src/errors.ts';
import { ident } from '../../src/sql/quote.ts';
import { createTestDatabase, installFence, type TestDatabase } from '../support/db.ts';

let db: TestDatabase;
before(async () => {
  db = await createTestDatabase();
  await installFence(db);
});
after(() => db.drop());

/** Everything init and protect own, as the catalog describes it (no OIDs). */
async function snapshot(): Promise<unknown> {
  const q = async (text: string) => (await db.admin.query(text)).rows;
  return {
    roles: await q(`SELECT rolname = 'tenantfence_owner' AS owner, rolsuper, rolbypassrls, rolcanlogin, rolinherit, rolcreatedb, rolcreaterole
                      FROM pg_roles WHERE rolname IN ('tenantfence_owner', '${db.roles.app}', '${db.roles.agent}') ORDER BY rolname`),
    functions: await q(`SELECT p.proname, p.prosecdef, p.provolatile, p.proconfig, pg_get_userbyid(p.proowner) AS owner, p.proacl::text
                          FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'tenantfence' ORDER BY 1`),
    tables: await q(`SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, c.relacl::text FROM pg_class c
                       JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname IN ('public', 'tenantfence') AND c.relkind = 'r' ORDER BY 1`),
    policies: await q(`SELECT tablename, policyname, permissive, roles::text, cmd, qual, with_check FROM pg_policies ORDER BY 1, 2`),
    indexes: await q(`SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1`),
    keys: await q(`SELECT kid, retired_at IS NULL AS active FROM tenantfence.keys ORDER BY 1`),
    database: await q(`SELECT datacl::text FROM pg_database WHERE datname = current_database()`),
  };
}

test('init and protect are idempotent: a second run changes nothing', async () => {
  const first = await snapshot();
  const secret = undefined; // an active key exists, so no new one is generated
  const again = await init({ db: db.admin, appRole: db.roles.app, agentRole: db.roles.agent, secret });
  assert.equal(again.generatedSecret, undefined);
  await protect({ allowGlobalKeys: true, db: db.admin, tables: ['conversations'], appRole: db.roles.app, agentRole: db.roles.agent });
  assert.deepEqual(await snapshot(), first);
});

test('the policy compares the bare column with the verified tenant cast to its type, USING and WITH CHECK', async () => {
  const { rows } = await db.admin.query(`SELECT qual, with_check, cmd, permissive FROM pg_policies WHERE tablename = 'conversations'`);
  assert.equal(rows.length, 1);
  assert.equal(rows[0].cmd, 'ALL');
  assert.match(rows[0].qual, /^\(tenant_id = \( SELECT \(tenantfence\.current_tenant\(\)\)::uuid AS current_tenant\)\)$/);
  assert.equal(rows[0].with_check, rows[0].qual);
});

test('protect casts to each column type and adds an index leading with the tenant column', async () => {
  await db.admin.query(`CREATE TABLE t_text (org text NOT NULL, v int); CREATE TABLE t_big (org bigint NOT NULL, v int);
                        ALTER TABLE t_text OWNER TO ${ident(db.roles.owner)}; ALTER TABLE t_big OWNER TO ${ident(db.roles.owner)}`);
  await protect({ allowGlobalKeys: true, db: db.admin, tables: ['t_text', 'public.t_big'], tenantColumn: 'org', appRole: db.roles.app, agentRole: db.roles.agent });
  const { rows } = await db.admin.query(`SELECT tablename, qual FROM pg_policies WHERE tablename IN ('t_text', 't_big') ORDER BY 1`);
  assert.match(rows[0].qual, /::bigint/);
  assert.match(rows[1].qual, /current_tenant\(\) AS current_tenant/);
  const idx = await db.admin.query(`SELECT indexdef FROM pg_indexes WHERE tablename IN ('t_text', 't_big') ORDER BY 1`);
  assert.equal(idx.rows.length, 2);
  for (const r of idx.rows) assert.match(r.indexdef, /\(org\)$/);
  // The index stays usable: the plan filters on the column through an index condition.
  await db.admin.query(`INSERT INTO t_big SELECT g % 50, g FROM generate_series(1, 5000) g; ANALYZE t_big`);
  const plan = await db.admin.query(`SET enable_seqscan = off; EXPLAIN SELECT * FROM t_big WHERE org = 3`);
  assert.match(JSON.stringify(plan), /Index|Bitmap/);
});

test('grants: app gets DML, agent SELECT only, neither TRUNCATE, REFERENCES nor TRIGGER', async () => {
  const { rows } = await db.admin.query(
    `SELECT grantee, string_agg(privilege_type, ',' ORDER BY privilege_type) AS p FROM information_schema.role_table_grants
      WHERE table_name = 'conversations' AND grantee IN ($1, $2) GROUP BY grantee ORDER BY grantee`,
    [db.roles.agent, db.roles.app],
  );
  assert.deepEqual(rows, [
    { grantee: db.roles.agent, p: 'SELECT' },
    { grantee: db.roles.app, p: 'DELETE,INSERT,SELECT,UPDATE' },
  ]);
});

test('the agent role has no TEMP and no CREATE', async () => {
  const { rows } = await db.admin.query(
    `SELECT has_database_privilege($1, current_database(), 'TEMP') AS temp,
            has_database_privilege($1, current_database(), 'CREATE') AS create_db,
            has_schema_privilege($1, 'public', 'CREATE') AS create_public,
            has_schema_privilege($1, 'tenantfence', 'CREATE') AS create_tf`,
    [db.roles.agent],
  );
  assert.deepEqual(rows[0], { temp: false, create_db: false, create_public: false, create_tf: false });
  const agent = db.pool(db.roles.agent);
  await assert.rejects(agent.query('CREATE TEMP TABLE x (a int)'), { code: '42501' });
  await assert.rejects(agent.query('CREATE TABLE public.x (a int)'), { code: '42501' });
});

test('init refuses a superuser or BYPASSRLS app role, and one that owns a protected table (exit 2 codes)', async () => {
  const su = db.role('tf_su');
  await db.admin.query(`CREATE ROLE ${ident(su)} SUPERUSER`);
  await assert.rejects(init({ db: db.admin, appRole: su, agentRole: db.roles.agent }), (e: { code?: string }) => e.code === ErrorCodes.UNSAFE_ROLE);
  const by = db.role('tf_by');
  await db.admin.query(`CREATE ROLE ${ident(by)} BYPASSRLS`);
  await assert.rejects(init({ db: db.admin, appRole: by, agentRole: db.roles.agent }), (e: { code?: string }) => e.code === ErrorCodes.UNSAFE_ROLE);
  const owner = db.role('tf_ownerapp');
  await db.admin.query(`CREATE ROLE ${ident(owner)}; CREATE TABLE owned (tenant_id uuid NOT NULL)`);
  await protect({ allowGlobalKeys: true, db: db.admin, tables: ['owned'], appRole: db.roles.app, agentRole: db.roles.agent });
  await db.admin.query(`ALTER TABLE owned OWNER TO ${ident(owner)}`);
  await assert.rejects(init({ db: db.admin, appRole: owner, agentRole: db.roles.agent }), (e: { code?: string }) => e.code === ErrorCodes.UNSAFE_ROLE);
  // Refusal wrote nothing: the superuser did not become a tenantfence app role with grants.
  const { rows } = await db.admin.query(`SELECT count(*)::int AS n FROM information_schema.role_table_grants WHERE grantee = $1`, [su]);
  assert.equal(rows[0].n, 0);
});

test('protect refuses a missing table, a table without the tenant column, and a table owned by the app role', async () => {
  const opts = { allowGlobalKeys: true, db: db.admin, appRole: db.roles.app, agentRole: db.roles.agent };
  await assert.rejects(protect({ ...opts, tables: ['nope'] }), (e: { code?: string }) => e.code === ErrorCodes.NO_TABLE);
  await db.admin.query(`CREATE TABLE no_tenant (id int)`);
  await assert.rejects(protect({ ...opts, tables: ['no_tenant'] }), (e: { code?: string }) => e.code === ErrorCodes.NO_TENANT_COLUMN);
  await db.admin.query(`CREATE TABLE app_owned (tenant_id uuid); ALTER TABLE app_owned OWNER TO ${ident(db.roles.app)}`);
  await assert.rejects(protect({ ...opts, tables: ['app_owned'] }), (e: { code?: string }) => e.code === ErrorCodes.UNSAFE_ROLE);
  // All or nothing: a good table named with a bad one is left untouched.
  await db.admin.query(`CREATE TABLE good (tenant_id uuid)`);
  await assert.rejects(protect({ ...opts, tables: ['good', 'nope'] }), (e: { code?: string }) => e.code === ErrorCodes.NO_TABLE);
  const { rows } = await db.admin.query(`SELECT relrowsecurity FROM pg_class WHERE relname = 'good'`);
  assert.equal(rows[0].relrowsecurity, false);
  // init refuses an app role that owns a tenant table (the audit's app-role-owns-table), protected or not
  await assert.rejects(init(opts), /app-role-owns-table reports: public\.app_owned is owned by/);
  await db.admin.query(`DROP TABLE app_owned`);
});

test('--print plans without applying and never prints the secret', async () => {
  const fresh = await createTestDatabase();
  try {
    const secret = 'k9.' + Buffer.alloc(32, 7).toString('base64url');
    const result = await init({ db: fresh.admin, appRole: fresh.roles.app, agentRole: fresh.roles.agent, secret, print: true });
    assert.equal(result.applied, false);
    assert.match(result.sql, /CREATE OR REPLACE FUNCTION "tenantfence"\.current_tenant\(\)/);
    assert.ok(!result.sql.includes(secret.split('.')[1]!));
    const { rows } = await fresh.admin.query(`SELECT to_regnamespace('tenantfence') IS NULL AS absent`);
    assert.equal(rows[0].absent, true);
  } finally {
    await fresh.drop();
  }
});

test('the cast never truncates: a longer tenant id does not match a shorter one (varchar(n), char(n))', async () => {
  const { withTenant } = await import('../../src/adapters/pg.ts');
  const { formatSecret, generateKey } = await import('../../src/context/token.ts');
  await db.admin.query(`CREATE TABLE t_short (org varchar(8) NOT NULL, v text); CREATE TABLE t_char (org char(8) NOT NULL, v text);
                        ALTER TABLE t_short OWNER TO ${ident(db.roles.owner)}; ALTER TABLE t_char OWNER TO ${ident(db.roles.owner)};
                        INSERT INTO t_short VALUES ('acmecorp', 'secret'); INSERT INTO t_char VALUES ('acmecorp', 'secret')`);
  await protect({ allowGlobalKeys: true, db: db.admin, tables: ['t_short', 't_char'], tenantColumn: 'org', appRole: db.roles.app, agentRole: db.roles.agent });
  const key = generateKey('tr');
  await init({ db: db.admin, appRole: db.roles.app, agentRole: db.roles.agent, secret: formatSecret(key) });
  const pool = db.pool(db.roles.app);
  for (const table of ['t_short', 't_char']) {
    const seen = (tenant: string) => withTenant(pool, tenant, async (c) => (await c.query(`SELECT v FROM ${table}`)).rows, { key });
    assert.deepEqual(await seen('acmecorp-evil'), [], table);
    assert.deepEqual(await seen('acmecorp'), [{ v: 'secret' }], table);
  }
});

test('init refuses app roles that can reach a way around RLS: CREATEROLE, owner membership, key readers', async () => {
  const refused = async (setup: (role: string) => string, pattern: RegExp) => {
    const role = db.role('tf_unfit');
    await db.admin.query(`DROP ROLE IF EXISTS ${ident(role)}`);
    await db.admin.query(`CREATE ROLE ${ident(role)} LOGIN; ${setup(ident(role))}`);
    await assert.rejects(init({ db: db.admin, appRole: role, agentRole: db.roles.agent }), (e: { code?: string; message: string }) =>
      e.code === ErrorCodes.UNSAFE_ROLE && pattern.test(e.message));
    await db.admin.query(`REASSIGN OWNED BY ${ident(role)} TO CURRENT_USER; DROP OWNED BY ${ident(role)}; DROP ROLE ${ident(role)}`);
  };
  // The audit's app-role-createrole judges CREATEROLE dangerous before PostgreSQL 16 only, and init
  // refuses what the audit reports: one rule set.
  const { rows } = await db.admin.query<{ v: number }>("SELECT current_setting('server_version_num')::int AS v");
  if (rows[0]!.v < 160000) await refused((r) => `ALTER ROLE ${r} CREATEROLE`, /app-role-createrole reports: .*CREATEROLE/);
  await refused((r) => `GRANT ${ident(db.roles.owner)} TO ${r}`, /app-role-owns-table reports: public\.conversations is owned by .* is a member of/);
  await refused((r) => `GRANT tenantfence_owner TO ${r}`, /(signing-key-exposed reports: .*signing key|from .*signing-key-exposed)/);
  await refused((r) => `GRANT pg_read_all_data TO ${r}`, /pg_read_all_data/);
  await refused((r) => `GRANT pg_read_all_stats TO ${r}`, /role-can-read-other-sessions reports: /);
  const su = db.role('tf_hidden_su');
  await db.admin.query(`CREATE ROLE ${ident(su)} SUPERUSER`);
  await refused((r) => `GRANT ${ident(su)} TO ${r}`, /superuser/);
  // An agent role that can reach the owner is refused too (NOINHERIT does not stop SET ROLE).
  await db.admin.query(`GRANT ${ident(db.roles.owner)} TO ${ident(db.roles.agent)}`);
  try {
    await assert.rejects(init({ db: db.admin, appRole: db.roles.app, agentRole: db.roles.agent }), /agent role/);
    await assert.rejects(protect({ allowGlobalKeys: true, db: db.admin, tables: ['conversations'], appRole: db.roles.app, agentRole: db.roles.agent }), (e: { code?: string }) => e.code === ErrorCodes.UNSAFE_ROLE);
  } finally {
    await db.admin.query(`REVOKE ${ident(db.roles.owner)} FROM ${ident(db.roles.agent)}`);
  }
});

test('the app role gets no TEMP unless init --app-temp', async () => {
  const temp = () => db.admin.query(`SELECT has_database_privilege($1, current_database(), 'TEMP') AS t`, [db.roles.app]).then((r) => r.rows[0].t);
  assert.equal(await temp(), false);
  await init({ db: db.admin, appRole: db.roles.app, agentRole: db.roles.agent, appTemp: true });
  assert.equal(await temp(), true);
  await init({ db: db.admin, appRole: db.roles.app, agentRole: db.roles.agent });
  assert.equal(await temp(), false);
});
