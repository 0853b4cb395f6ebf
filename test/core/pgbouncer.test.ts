/**
 * Per-transaction context through a transaction-mode pooler: hundreds of interleaved requests of
 * two tenants over two server connections, some of them trying to leave their token behind on the
 * server connection. No request may see the other tenant's rows; no context-free query may see any.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { withTenant } from '../../src/adapters/pg.ts';
import { createTestDatabase, installFence, rowsOf, TENANT_A, TENANT_B, type Fenced, type TestDatabase } from '../support/db.ts';
import { pgbouncerPath, startPgbouncer, type Bouncer } from '../support/pgbouncer.ts';

// Installed by .ci/run; a developer machine without it sees this test skipped, CI never does.
const missing = !pgbouncerPath() && !process.env.CI;

let db: TestDatabase;
let fence: Fenced;
let bouncer: Bouncer;
before(async () => {
  if (missing) return;
  db = await createTestDatabase();
  fence = await installFence(db);
  bouncer = await startPgbouncer(new URL(db.url), db.roles.app, db.password, 2);
});
after(async () => {
  if (missing) return;
  await bouncer?.stop();
  await db.drop();
});

for (const pipeline of [false, true]) {
  test(`interleaved tenants through PgBouncer (transaction mode, pipeline=${pipeline}) never see each other`, { skip: missing && 'pgbouncer not installed' }, async () => {
    const pool = new pg.Pool({ host: '127.0.0.1', port: bouncer.port, database: 'db', user: 'any', max: 12, pipeline } as pg.PoolConfig);
    pool.on('error', () => undefined);
    try {
      const b = await rowsOf(db, TENANT_B);
      const results = await Promise.all(
        Array.from({ length: 300 }, async (_, i) => {
          const tenant = i % 2 === 0 ? TENANT_A : TENANT_B;
          if (i % 7 === 0) {
            // A context-free query lands on whichever server connection is free.
            const { rows } = await pool.query('SELECT count(*)::int AS n FROM conversations');
            return { tenant: 'none', seen: rows[0].n === 0 ? [] : ['LEAK'] };
          }
          const seen = await withTenant(pool, tenant, async (c) => {
            if (i % 5 === 0) {
              // The agent's trick: copy the token to the session so it outlives the transaction.
              await c.query("SELECT set_config('tenantfence.context', current_setting('tenantfence.context'), false)");
            }
            const { rows } = await c.query<{ tenant_id: string }>('SELECT DISTINCT tenant_id FROM conversations');
            return rows.map((r) => r.tenant_id);
          }, { key: fence.key });
          return { tenant, seen };
        }),
      );
      for (const r of results) {
        assert.deepEqual(r.seen, r.tenant === 'none' ? [] : [r.tenant]);
      }
      assert.deepEqual(await rowsOf(db, TENANT_B), b);
    } finally {
      await pool.end();
    }
  });
}
