/**
 * One isolation suite for every binding (test/adapters/bindings.ts), against a real PostgreSQL as
 * the app role, with the superuser's view of the table as the ground truth: two tenants reading,
 * inserting, updating and deleting; writes into another tenant refused; no context, no rows and no
 * writes; a failing callback leaves nothing; the ORM's own nested transaction is a savepoint and the
 * fence holds after it; hundreds of interleaved requests over many tenants, directly and through
 * PgBouncer in transaction mode.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { urlForRole } from '../../src/embedded/database.ts';
import { runWithTenant } from '../../src/context/storage.ts';
import { createTestDatabase, installFence, rowsOf, TENANT_A, TENANT_B, type Fenced, type TestDatabase } from '../support/db.ts';
import { pgbouncerPath, startPgbouncer, type Bouncer } from '../support/pgbouncer.ts';
import { bindings, type Harness, type Ops, type Row } from './bindings.ts';

// Installed by .ci/run; a developer machine without it sees those tests skipped, CI never does.
const noBouncer = !pgbouncerPath() && !process.env.CI;

/** The SQLSTATE of a driver error, also when an ORM wraps it (Prisma: meta.driverAdapterError.cause.originalCode). */
function sqlstate(error: unknown): string | undefined {
  const seen = new Set<unknown>();
  const visit = (e: unknown): string | undefined => {
    if (!e || typeof e !== 'object' || seen.has(e)) return undefined;
    seen.add(e);
    const { code, originalCode, cause, meta, driverAdapterError } = e as Record<string, unknown>;
    for (const c of [code, originalCode]) if (typeof c === 'string' && /^[0-9A-Z]{5}$/.test(c) && !c.startsWith('P')) return c;
    return visit(cause) ?? visit(meta) ?? visit(driverAdapterError);
  };
  return visit(error);
}

const tenantsOf = (rows: Row[]) => [...new Set(rows.map((r) => r.tenant_id))].sort();

async function allRows(db: TestDatabase): Promise<Array<{ tenant_id: string; transcript: string | null }>> {
  const { rows } = await db.admin.query('SELECT tenant_id::text, transcript FROM conversations ORDER BY id');
  return rows;
}

/** 200+ requests over 20+ tenants at once; each inserts a row and reads what it can see. */
async function interleaved(app: Harness, db: TestDatabase, requests = 240, tenantCount = 24): Promise<void> {
  const tenants = Array.from({ length: tenantCount }, () => randomUUID());
  const seen = await Promise.all(
    Array.from({ length: requests }, (_, i) => {
      const tenant = tenants[i % tenantCount]!;
      return app.run(tenant, async (ops) => {
        await ops.insert(tenant, `request ${i}`);
        return { tenant, rows: await ops.list() };
      });
    }),
  );
  for (const { tenant, rows } of seen) assert.deepEqual(tenantsOf(rows), [tenant]);
  const { rows } = await db.admin.query<{ tenant_id: string; n: number }>(
    'SELECT tenant_id::text, count(*)::int AS n FROM conversations WHERE tenant_id = ANY($1::uuid[]) GROUP BY 1',
    [tenants],
  );
  assert.equal(rows.length, tenantCount);
  for (const r of rows) assert.equal(r.n, requests / tenantCount);
}

for (const binding of bindings) {
  describe(binding.name, () => {
    let db: TestDatabase;
    let fence: Fenced;
    let app: Harness;
    before(async () => {
      db = await createTestDatabase();
      fence = await installFence(db);
      app = await binding.open(urlForRole(db.url, db.roles.app, db.password), fence.key);
    });
    after(async () => {
      await app?.close();
      await db?.drop();
    });

    test('each tenant reads only its rows', async () => {
      const a = await app.run(TENANT_A, (ops) => ops.list());
      const b = await app.run(TENANT_B, (ops) => ops.list());
      assert.equal(a.length, 3);
      assert.deepEqual(tenantsOf(a), [TENANT_A]);
      assert.equal(b.length, 2);
      assert.deepEqual(tenantsOf(b), [TENANT_B]);
    });

    test('insert, update and delete reach the own tenant only', async () => {
      const before = await rowsOf(db, TENANT_B);
      const changed = await app.run(TENANT_A, async (ops) => {
        await ops.insert(TENANT_A, 'crud');
        // B's rows carry other transcripts; these statements name them and must touch nothing.
        const foreign = (await ops.update(`secret of ${TENANT_B} #1`, 'stolen')) + (await ops.remove(`secret of ${TENANT_B} #2`));
        return { updated: await ops.update('crud', 'crud updated'), foreign };
      });
      assert.deepEqual(changed, { updated: 1, foreign: 0 });
      assert.equal(await app.run(TENANT_A, (ops) => ops.remove('crud updated')), 1);
      assert.deepEqual(await rowsOf(db, TENANT_B), before);
      assert.equal((await allRows(db)).filter((r) => r.transcript?.startsWith('crud')).length, 0);
    });

    test('an insert into another tenant is refused and leaves nothing', async () => {
      const before = await rowsOf(db, TENANT_B);
      await assert.rejects(
        app.run(TENANT_A, (ops) => ops.insert(TENANT_B, 'planted')),
        (e) => sqlstate(e) === '42501',
      );
      assert.deepEqual(await rowsOf(db, TENANT_B), before);
      assert.equal((await allRows(db)).filter((r) => r.transcript === 'planted').length, 0);
    });

    test('no tenant: TF_NO_TENANT and nothing runs; the request context supplies one', async () => {
      let ran = false;
      await assert.rejects(
        app.run(undefined, async () => {
          ran = true;
        }),
        { code: 'TF_NO_TENANT' },
      );
      assert.equal(ran, false);
      const fromContext = await runWithTenant(TENANT_B, () => app.run(undefined, (ops) => ops.list()));
      assert.deepEqual(tenantsOf(fromContext), [TENANT_B]);
    });

    test('without a fence the same driver sees no rows and writes none', async () => {
      assert.deepEqual(await app.unfenced.list(), []);
      await assert.rejects(app.unfenced.insert(TENANT_A, 'unfenced'), (e) => sqlstate(e) === '42501');
      assert.equal(await app.unfenced.update(`secret of ${TENANT_A} #1`, 'unfenced'), 0);
      assert.equal(await app.unfenced.remove(`secret of ${TENANT_A} #1`), 0);
      assert.equal((await rowsOf(db, TENANT_A)).length, 3);
    });

    test('an exception in the callback rolls everything back', async () => {
      const before = await allRows(db);
      await assert.rejects(
        app.run(TENANT_A, async (ops) => {
          await ops.insert(TENANT_A, 'doomed');
          await ops.update(`secret of ${TENANT_A} #1`, 'doomed update');
          await ops.remove(`secret of ${TENANT_A} #2`);
          throw new Error('handler failed');
        }),
        /handler failed/,
      );
      assert.deepEqual(await allRows(db), before);
    });

    test('the ORM\'s nested transaction is a savepoint: it rolls back alone and the fence holds', async () => {
      const b = await rowsOf(db, TENANT_B);
      const inside = await app.run(TENANT_A, async (ops) => {
        await ops.insert(TENANT_A, 'outer 1');
        await assert.rejects(
          ops.nested(async (inner) => {
            await inner.insert(TENANT_A, 'inner rolled back');
            throw new Error('inner failed');
          }),
          /inner failed/,
        );
        await ops.nested((inner) => inner.insert(TENANT_A, 'inner kept'));
        await ops.nested((inner) => inner.nested((deeper) => deeper.insert(TENANT_A, 'deeper kept')));
        // Still inside the fence: only A's rows, and another tenant's row is still refused.
        const rows = await ops.list();
        await assert.rejects(ops.nested((inner) => inner.insert(TENANT_B, 'planted in savepoint')), (e) => sqlstate(e) === '42501');
        await ops.insert(TENANT_A, 'outer 2');
        return rows;
      });
      assert.deepEqual(tenantsOf(inside), [TENANT_A]);
      assert.deepEqual(inside.map((r) => r.transcript).filter((t) => !t?.startsWith('secret')), ['outer 1', 'inner kept', 'deeper kept']);
      const mine = (await rowsOf(db, TENANT_A)).map((r) => r.transcript);
      for (const t of ['outer 1', 'inner kept', 'deeper kept', 'outer 2']) assert.ok(mine.includes(t), t);
      assert.ok(!mine.includes('inner rolled back'));
      assert.deepEqual(await rowsOf(db, TENANT_B), b);
      // An exception after a committed savepoint still rolls the whole fence back.
      await assert.rejects(
        app.run(TENANT_A, async (ops) => {
          await ops.nested((inner) => inner.insert(TENANT_A, 'savepoint then failure'));
          throw new Error('outer failed');
        }),
        /outer failed/,
      );
      assert.ok(!(await rowsOf(db, TENANT_A)).some((r) => r.transcript === 'savepoint then failure'));
    });

    test('240 interleaved requests over 24 tenants see only their own rows', async () => {
      await interleaved(app, db);
    });

    describe('through PgBouncer in transaction mode', { skip: noBouncer && 'pgbouncer not installed' }, () => {
      let bouncer: Bouncer;
      let pooled: Harness;
      before(async () => {
        bouncer = await startPgbouncer(new URL(db.url), db.roles.app, db.password, 2);
        pooled = await binding.open(`postgres://any@127.0.0.1:${bouncer.port}/db`, fence.key);
      });
      after(async () => {
        await pooled?.close();
        await bouncer?.stop();
      });

      test('240 interleaved requests over 24 tenants see only their own rows', async () => {
        await interleaved(pooled, db);
      });

      test('a nested transaction and a failure behave the same behind the pooler', async () => {
        const before = await allRows(db);
        await assert.rejects(
          pooled.run(TENANT_B, async (ops: Ops) => {
            await ops.nested((inner) => inner.insert(TENANT_B, 'pooled doomed'));
            throw new Error('pooled failure');
          }),
          /pooled failure/,
        );
        assert.deepEqual(await allRows(db), before);
        assert.deepEqual(await pooled.unfenced.list(), []);
      });
    });
  });
}
