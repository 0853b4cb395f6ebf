/**
 * The verifier sets no search_path (docs/context.md, "The verifier"): it must hold when the caller
 * puts a schema of its own, full of look-alike functions and operators, in front of pg_catalog.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { signContext } from '../../src/context/token.ts';
import { ident } from '../../src/sql/quote.ts';
import { createTestDatabase, installFence, TENANT_A, TENANT_B, type Fenced, type TestDatabase } from '../support/db.ts';

let db: TestDatabase;
let fence: Fenced;
before(async () => {
  db = await createTestDatabase();
  fence = await installFence(db);
});
after(() => db.drop());

test('a hostile search_path with look-alike operators and functions cannot make a forged token verify', async () => {
  const evil = db.role('tf_evil');
  await db.admin.query(`CREATE ROLE ${ident(evil)} LOGIN PASSWORD '${db.password}'; CREATE SCHEMA evil AUTHORIZATION ${ident(evil)}`);
  const pool = db.pool(evil);
  // Everything the verifier's body uses, redefined to always agree.
  await pool.query(`
    CREATE FUNCTION evil.texteq_any(text, text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
    CREATE FUNCTION evil.textne_never(text, text) RETURNS boolean LANGUAGE sql AS 'SELECT false';
    CREATE OPERATOR evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.texteq_any);
    CREATE OPERATOR evil.<> (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.textne_never);
    CREATE FUNCTION evil.encode(bytea, text) RETURNS text LANGUAGE sql AS $$SELECT 'forged'$$;
    CREATE FUNCTION evil.right(text, integer) RETURNS text LANGUAGE sql AS $$SELECT 'forged'$$;
    CREATE FUNCTION evil.current_setting(text, boolean) RETURNS text LANGUAGE sql AS $$SELECT 'x'$$;
    CREATE TABLE evil.keys (kid text, inner_pad bytea, outer_pad bytea, retired_at timestamptz)`);
  const own = signContext(fence.key, TENANT_A);
  const forged = own.replace(`.${TENANT_A}.`, `.${TENANT_B}.`);
  const verify = async (token: string) => {
    const c = await pool.connect();
    try {
      await c.query('BEGIN');
      await c.query(`SET LOCAL search_path = evil, pg_catalog, pg_temp`);
      await c.query(`SELECT set_config('tenantfence.context', $1, true)`, [token]);
      return (await c.query<{ t: string | null }>('SELECT tenantfence.current_tenant() AS t')).rows[0]!.t;
    } finally {
      await c.query('ROLLBACK');
      c.release();
    }
  };
  assert.equal(await verify(forged), null);
  assert.equal(await verify(own), TENANT_A);
  assert.equal(await verify(`${own.slice(0, -64)}${'0'.repeat(64)}`), null);
});
