/**
 * `protect` refuses keys that span tenants (issue 10, item 3): a unique or foreign key without the
 * tenant column is an existence oracle and a squatting point that RLS cannot close. Judged on the
 * catalog (nothing applied on refusal) and on the data (the squatting attack, then its fix).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { withTenant } from '../../src/adapters/pg.ts';
import { protect } from '../../src/cli/commands/protect.ts';
import { main } from '../../src/cli/main.ts';
import type { SigningKey } from '../../src/context/token.ts';
import { ErrorCodes } from '../../src/errors.ts';
import { ident } from '../../src/sql/quote.ts';
import { createTestDatabase, initFence, TENANT_A, TENANT_B, type TestDatabase } from '../support/db.ts';

let db: TestDatabase;
let key: SigningKey;
before(async () => {
  db = await createTestDatabase();
  ({ key } = await initFence(db));
});
after(() => db.drop());

const owned = (name: string) => db.admin.query(`ALTER TABLE ${ident(name)} OWNER TO ${ident(db.roles.owner)}`);
const rls = async (name: string) => (await db.admin.query(`SELECT relrowsecurity AS on FROM pg_class WHERE relname = $1`, [name])).rows[0].on as boolean;
const roles = () => ({ db: db.admin, appRole: db.roles.app, agentRole: db.roles.agent });

test('a global unique key is refused, naming it; nothing is applied; with the flag the squatting it allows is real', async () => {
  await db.admin.query(`CREATE TABLE coupons (tenant_id uuid NOT NULL, id uuid NOT NULL DEFAULT gen_random_uuid(), code text NOT NULL UNIQUE, PRIMARY KEY (tenant_id, id))`);
  await owned('coupons');
  await assert.rejects(protect({ ...roles(), tables: ['coupons'] }), (e: { code?: string; message: string }) =>
    e.code === ErrorCodes.GLOBAL_KEYS && /unique index coupons_code_key/.test(e.message) && !/coupons_pkey/.test(e.message));
  assert.equal(await rls('coupons'), false, 'a refused table is left as it was');

  const result = await protect({ ...roles(), tables: ['coupons'], allowGlobalKeys: true });
  assert.ok(result.advice.some((a) => /coupons_code_key/.test(a)));
  // The attack the refusal is about: tenant A registers the code tenant B is about to use.
  const pool = db.pool(db.roles.app);
  await withTenant(pool, TENANT_A, (c) => c.query(`INSERT INTO coupons (tenant_id, code) VALUES ($1, 'WELCOME-B')`, [TENANT_A]), { key });
  await assert.rejects(withTenant(pool, TENANT_B, (c) => c.query(`INSERT INTO coupons (tenant_id, code) VALUES ($1, 'WELCOME-B')`, [TENANT_B]), { key }), { code: '23505' });

  // The fix the refusal names: the key per tenant. Then protect needs no flag and B's insert lands.
  await db.admin.query(`ALTER TABLE coupons DROP CONSTRAINT coupons_code_key, ADD UNIQUE (tenant_id, code)`);
  await protect({ ...roles(), tables: ['coupons'] });
  await withTenant(pool, TENANT_B, (c) => c.query(`INSERT INTO coupons (tenant_id, code) VALUES ($1, 'WELCOME-B')`, [TENANT_B]), { key });
  const { rows } = await db.admin.query(`SELECT tenant_id::text AS t FROM coupons WHERE code = 'WELCOME-B' ORDER BY 1`);
  assert.deepEqual(rows.map((r) => r.t), [TENANT_A, TENANT_B]);
});

test('a foreign key that leaves the tenant column out is refused, on the referencing table', async () => {
  await db.admin.query(`CREATE TABLE orders (tenant_id uuid NOT NULL, id uuid NOT NULL, PRIMARY KEY (tenant_id, id), UNIQUE (id));
    CREATE TABLE order_notes (tenant_id uuid NOT NULL, id uuid NOT NULL DEFAULT gen_random_uuid(), order_id uuid REFERENCES orders (id),
      PRIMARY KEY (tenant_id, id))`);
  await owned('orders');
  await owned('order_notes');
  await assert.rejects(protect({ ...roles(), tables: ['order_notes'] }), (e: { code?: string; message: string }) =>
    e.code === ErrorCodes.GLOBAL_KEYS && /foreign key order_notes_order_id_fkey/.test(e.message));
  assert.equal(await rls('order_notes'), false);
  // The same key seen from the referenced table, along with its own global unique key.
  await assert.rejects(protect({ ...roles(), tables: ['orders'] }), (e: { code?: string; message: string }) =>
    e.code === ErrorCodes.GLOBAL_KEYS && /foreign key order_notes_order_id_fkey/.test(e.message) && /unique index orders_id_key/.test(e.message));
});

test('the CLI exits 2 with one TF_GLOBAL_KEYS line; --allow-global-keys protects and prints the keys as advice', async () => {
  await db.admin.query(`CREATE TABLE tickets (id bigserial PRIMARY KEY, tenant_id uuid NOT NULL, body text)`);
  await owned('tickets');
  const run = async (...extra: string[]) => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await main(['protect', 'tickets', '--app-role', db.roles.app, '--agent-role', db.roles.agent, '--database-url', db.url, ...extra], {
      out: (s: string) => void out.push(s), err: (s: string) => void err.push(s), isTTY: false,
    });
    return { code, out: out.join(''), err: err.join('') };
  };
  const refused = await run();
  assert.equal(refused.code, 2);
  assert.equal(refused.out, '');
  assert.match(refused.err, /^tenantfence: TF_GLOBAL_KEYS: Table public\.tickets has keys that span tenants \(unique index tickets_pkey\)/);
  assert.equal(refused.err.split('\n').filter(Boolean).length, 1);
  const allowed = await run('--allow-global-keys');
  assert.equal(allowed.code, 0, allowed.err);
  assert.match(allowed.out, /protected: public\.tickets/);
  assert.match(allowed.err, /advice: .*tickets_pkey/);
});
