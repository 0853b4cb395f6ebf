/**
 * `protect` owns a table's permissive policies (issue 9, item 3) and can make the tenant column's
 * DEFAULT the verified tenant (item 7). Judged on the data, as the production app and agent roles.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { withTenant, type PgClientLike } from '../../src/adapters/pg.ts';
import { protect } from '../../src/cli/commands/protect.ts';
import { main } from '../../src/cli/main.ts';
import type { SigningKey } from '../../src/context/token.ts';
import { ident } from '../../src/sql/quote.ts';
import { createTestDatabase, initFence, TENANT_A, TENANT_B, type TestDatabase } from '../support/db.ts';

let db: TestDatabase;
let key: SigningKey;
before(async () => {
  db = await createTestDatabase();
  ({ key } = await initFence(db));
});
after(() => db.drop());

/** The seed recipe's table: RLS on and forced, a GUC policy and a legacy bypass switch. */
async function legacyTable(name: string): Promise<void> {
  await db.admin.query(`CREATE TABLE ${ident(name)} (tenant_id uuid NOT NULL, id uuid NOT NULL DEFAULT gen_random_uuid(), body text,
      PRIMARY KEY (tenant_id, id));
    ALTER TABLE ${ident(name)} OWNER TO ${ident(db.roles.owner)};
    ALTER TABLE ${ident(name)} ENABLE ROW LEVEL SECURITY;
    ALTER TABLE ${ident(name)} FORCE ROW LEVEL SECURITY;
    CREATE POLICY tenant_guc ON ${ident(name)} USING (tenant_id = current_setting('app.tenant_id', true)::uuid);
    CREATE POLICY admin_bypass ON ${ident(name)} USING (current_setting('app.bypass_rls', true) = 'on');
    CREATE POLICY only_live ON ${ident(name)} AS RESTRICTIVE USING (body IS DISTINCT FROM 'deleted');
    GRANT SELECT, INSERT, UPDATE, DELETE ON ${ident(name)} TO ${ident(db.roles.app)};
    INSERT INTO ${ident(name)} (tenant_id, body) VALUES ('${TENANT_A}', 'a1'), ('${TENANT_A}', 'a2'), ('${TENANT_B}', 'b1')`);
}

/** What tenant A's transaction reads after flipping the legacy bypass switch. */
async function bypassAttack(table: string): Promise<string[]> {
  const pool = db.pool(db.roles.app);
  return withTenant(pool, TENANT_A, async (c) => {
    await c.query(`SELECT set_config('app.bypass_rls', 'on', true)`);
    const { rows } = await c.query<{ body: string }>(`SELECT body FROM ${ident(table)} ORDER BY body`);
    return rows.map((r) => r.body);
  }, { key });
}

async function policiesOf(table: string): Promise<string[]> {
  const { rows } = await db.admin.query(`SELECT polname FROM pg_policy WHERE polrelid = $1::regclass ORDER BY polname`, [table]);
  return rows.map((r) => r.polname);
}

test('protect refuses a table with other permissive policies, names each, changes nothing; the bypass still works', async () => {
  await legacyTable('legacy');
  await assert.rejects(protect({ allowGlobalKeys: true, db: db.admin, tables: ['legacy'], appRole: db.roles.app, agentRole: db.roles.agent }), (error: Error & { code?: string }) => {
    assert.equal(error.code, 'TF_POLICY_CONFLICT');
    assert.match(error.message, /admin_bypass \(FOR ALL TO PUBLIC USING \(\(current_setting\('app\.bypass_rls'::text, true\) = 'on'::text\)\)\)/);
    assert.match(error.message, /tenant_guc \(FOR ALL TO PUBLIC USING/);
    assert.match(error.message, /ORs with the tenant policy, so each one widens what a tenant reads and writes/);
    assert.match(error.message, /--replace-policies/);
    assert.doesNotMatch(error.message, /only_live/, 'a restrictive policy only narrows and is not named');
    return true;
  });
  assert.deepEqual(await policiesOf('legacy'), ['admin_bypass', 'only_live', 'tenant_guc'], 'nothing was applied');
  // The refusal is honest: the hole it names is still open on the data.
  assert.deepEqual(await bypassAttack('legacy'), ['a1', 'a2', 'b1']);
});

test('the CLI exits 2 with TF_POLICY_CONFLICT and never prints "protected"', async () => {
  await legacyTable('legacy_cli');
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(['protect', 'legacy_cli', '--app-role', db.roles.app, '--agent-role', db.roles.agent, '--database-url', db.url], {
    out: (s: string) => void out.push(s), err: (s: string) => void err.push(s), isTTY: false,
  });
  assert.equal(code, 2);
  assert.equal(out.join(''), '');
  assert.match(err.join(''), /^tenantfence: TF_POLICY_CONFLICT: Table public\.legacy_cli has other permissive policies/);
  assert.equal(err.join('').split('\n').filter(Boolean).length, 1, 'one line');
});

test('--replace-policies drops them: the bypass attack reads only the tenant\'s rows, restrictive policies stay', async () => {
  await legacyTable('legacy_replaced');
  const result = await protect({ allowGlobalKeys: true, db: db.admin, tables: ['legacy_replaced'], appRole: db.roles.app, agentRole: db.roles.agent, replacePolicies: true });
  assert.match(result.sql, /DROP POLICY "admin_bypass" ON "public"\."legacy_replaced"/);
  assert.deepEqual(await policiesOf('legacy_replaced'), ['only_live', 'tenantfence_isolation']);
  assert.deepEqual(await bypassAttack('legacy_replaced'), ['a1', 'a2']);
  // and the old GUC switch no longer selects a tenant either
  const pool = db.pool(db.roles.app);
  const seen = await withTenant(pool, TENANT_A, async (c) => {
    await c.query(`SELECT set_config('app.tenant_id', $1, true)`, [TENANT_B]);
    return (await c.query<{ body: string }>('SELECT body FROM legacy_replaced ORDER BY body')).rows.map((r) => r.body);
  }, { key });
  assert.deepEqual(seen, ['a1', 'a2']);
});

test('protect --print works before init and says what must be applied first', async () => {
  const other = await createTestDatabase();
  try {
    await other.admin.query('CREATE TABLE notes (tenant_id varchar(8) NOT NULL, body text)');
    const result = await protect({ allowGlobalKeys: true, db: other.admin, tables: ['notes'], appRole: other.roles.app, agentRole: other.roles.agent, print: true });
    assert.equal(result.applied, false);
    assert.match(result.sql, /^-- Apply after `tenantfence init`/);
    assert.match(result.sql, /no tenantfence schema/);
    assert.match(result.sql, new RegExp(`Role ${other.roles.app} does not exist`));
    assert.match(result.sql, /"tenant_id" = \(SELECT "tenantfence"\.current_tenant\(\)::character varying\)/);
    await assert.rejects(protect({ allowGlobalKeys: true, db: other.admin, tables: ['notes'], appRole: other.roles.app, agentRole: other.roles.agent }),
      (error: Error & { code?: string }) => error.code === 'TF_NOT_INITIALISED');
  } finally {
    await other.drop();
  }
});

async function insertWithoutTenant(c: PgClientLike, table: string, body: string): Promise<void> {
  await c.query(`INSERT INTO ${ident(table)} (body) VALUES ($1)`, [body]);
}

test('--default-tenant: an INSERT without the tenant column lands in the fenced tenant; without context it fails', async () => {
  for (const [table, type, tenant] of [['drafts', 'uuid', TENANT_B], ['slugs', 'varchar(8)', 'acmecorp']] as const) {
    await db.admin.query(`CREATE TABLE ${table} (tenant_id ${type} NOT NULL, id uuid NOT NULL DEFAULT gen_random_uuid(), body text, PRIMARY KEY (tenant_id, id));
      ALTER TABLE ${table} OWNER TO ${ident(db.roles.owner)}`);
    await protect({ allowGlobalKeys: true, db: db.admin, tables: [table], appRole: db.roles.app, agentRole: db.roles.agent, defaultTenant: true, agentWrite: true });
    for (const role of [db.roles.app, db.roles.agent]) {
      await withTenant(db.pool(role), tenant, (c) => insertWithoutTenant(c, table, `by ${role}`), { key });
    }
    const { rows } = await db.admin.query(`SELECT tenant_id::text AS t, body FROM ${table} ORDER BY body`);
    assert.deepEqual(rows, [{ t: tenant, body: `by ${db.roles.agent}` }, { t: tenant, body: `by ${db.roles.app}` }]);
    // no context: the default is NULL and the insert fails (NOT NULL, and WITH CHECK besides)
    const client = await db.pool(db.roles.app).connect();
    try {
      await assert.rejects(insertWithoutTenant(client, table, 'no context'), /null value|row-level security/);
      // a forged context is no context
      await client.query('BEGIN');
      await client.query(`SELECT set_config('tenantfence.context', 'v1.t1.${tenant}.9999999999..00', true)`);
      await assert.rejects(insertWithoutTenant(client, table, 'forged'), /null value|row-level security/);
      await client.query('ROLLBACK');
    } finally {
      client.release();
    }
    assert.equal((await db.admin.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n, 2);
  }
});

test('--default-tenant on varchar(8): tenant acmecorp-evil cannot write into acmecorp (the default is cast like the policy)', async () => {
  await db.admin.query(`CREATE TABLE codes (tenant_id varchar(8) NOT NULL, body text);
    ALTER TABLE codes OWNER TO ${ident(db.roles.owner)}`);
  await protect({ allowGlobalKeys: true, db: db.admin, tables: ['codes'], appRole: db.roles.app, agentRole: db.roles.agent, defaultTenant: true });
  await assert.rejects(withTenant(db.pool(db.roles.app), 'acmecorp-evil', (c) => insertWithoutTenant(c, 'codes', 'evil'), { key }),
    /too long|row-level security/);
  assert.equal((await db.admin.query('SELECT count(*)::int AS n FROM codes')).rows[0].n, 0);
});

test('protect says "protected" only when no role can take a way around the policy: an app role with BYPASSRLS is refused, nothing applied', async () => {
  await db.admin.query(`CREATE TABLE bypassed (tenant_id uuid NOT NULL, body text); ALTER TABLE bypassed OWNER TO ${ident(db.roles.owner)};
    ALTER ROLE ${ident(db.roles.app)} BYPASSRLS`);
  try {
    await assert.rejects(protect({ allowGlobalKeys: true, db: db.admin, tables: ['bypassed'], appRole: db.roles.app, agentRole: db.roles.agent }),
      (e: Error & { code?: string }) => e.code === 'TF_UNSAFE_ROLE' && /^protect refuses these roles, as audit rule app-role-bypassrls reports: .*has BYPASSRLS/.test(e.message));
    const { rows } = await db.admin.query(`SELECT relrowsecurity FROM pg_class WHERE relname = 'bypassed'`);
    assert.equal(rows[0].relrowsecurity, false, 'rolled back');
  } finally {
    await db.admin.query(`ALTER ROLE ${ident(db.roles.app)} NOBYPASSRLS`);
  }
});
