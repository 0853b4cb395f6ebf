/**
 * The fence engine through node-postgres: the one-round-trip statement, broken fences, dead
 * connections, state the old reset missed, and role-level defaults the fence pins. Every check
 * is made on what the database did, as the production app role.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, tenantQuery, withTenant } from '../../src/adapters/pg.ts';
import { fencedStatement, type FenceConnection } from '../../src/context/fence.ts';
import { runWithTenant } from '../../src/context/storage.ts';
import { ErrorCodes } from '../../src/errors.ts';
import { ident } from '../../src/sql/quote.ts';
import { init } from '../../src/cli/commands/init.ts';
import { formatSecret } from '../../src/context/token.ts';
import { createTestDatabase, installFence, rowsOf, TENANT_A, TENANT_B, type Fenced, type TestDatabase } from '../support/db.ts';

let db: TestDatabase;
let fence: Fenced;
before(async () => {
  db = await createTestDatabase();
  fence = await installFence(db);
});
after(() => db.drop());

const code = (expected: string) => (e: { code?: string }) => e.code === expected;
const backendOf = async (pool: ReturnType<TestDatabase['pool']>) => {
  const c = await pool.connect();
  try {
    return (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
  } finally {
    c.release();
  }
};

for (const pipeline of [false, true]) {
  test(`tenantQuery reads and writes only the tenant's rows (pipeline=${pipeline})`, async () => {
    const pool = db.pool(db.roles.app, { pipeline } as object);
    const a = await tenantQuery<{ transcript: string }>(pool, TENANT_A, 'SELECT transcript FROM conversations ORDER BY transcript', [], { key: fence.key });
    assert.deepEqual(a.rows.map((r) => r.transcript), (await rowsOf(db, TENANT_A)).map((r) => r.transcript).sort());
    assert.equal(a.command, 'SELECT');
    const { rows } = await tenantQuery<{ n: number; at: Date }>(pool, TENANT_B, 'SELECT count(*)::int AS n, now() AS at FROM conversations WHERE $1::int = 1', [1], { key: fence.key });
    assert.equal(rows[0]!.n, 2);
    assert.ok(rows[0]!.at instanceof Date, 'the statement\'s rows go through the driver\'s type parsers');
    const before = await rowsOf(db, TENANT_B);
    const u = await tenantQuery(pool, TENANT_A, `UPDATE conversations SET transcript = 'x' WHERE tenant_id = $1`, [TENANT_B], { key: fence.key });
    assert.equal(u.rowCount, 0);
    assert.deepEqual(await rowsOf(db, TENANT_B), before);
    await assert.rejects(
      tenantQuery(pool, TENANT_A, `INSERT INTO conversations (tenant_id, agent_id) VALUES ($1, gen_random_uuid())`, [TENANT_B], { key: fence.key }),
      code('42501'),
    );
    assert.deepEqual(await rowsOf(db, TENANT_B), before);
  });
}

test('round trips on an ordinary pool: tenantQuery 1; withTenant with N queries N + 2 (BEGIN and the context are one)', async () => {
  const pool = db.pool(db.roles.app, { max: 1 });
  // Without pipelining the client waits for every ReadyForQuery, so each one is a round trip.
  let ready = 0;
  const client = await pool.connect();
  (client as unknown as { connection: { on(e: string, f: () => void): void } }).connection.on('readyForQuery', () => ready++);
  client.release();
  const { rows } = await tenantQuery<{ n: number }>(pool, TENANT_A, 'SELECT count(*)::int AS n FROM conversations', [], { key: fence.key });
  assert.equal(rows[0]!.n, 3);
  assert.equal(ready, 1);
  ready = 0;
  const counts = await withTenant(pool, TENANT_B, async (c) => [
    (await c.query('SELECT count(*)::int AS n FROM conversations')).rows[0].n,
    (await c.query('SELECT count(*)::int AS n FROM conversations WHERE transcript IS NOT NULL')).rows[0].n,
  ], { key: fence.key });
  assert.deepEqual(counts, [2, 2]);
  assert.equal(ready, 2 + 2);
});

test('asyncCommit: the commit runs with synchronous_commit off, also after the one-statement reset', async () => {
  // A deferred constraint trigger runs at COMMIT, after the reset of a one-statement transaction:
  // it records the setting the commit really has.
  await db.admin.query(`CREATE TABLE commit_probe (x int);
    CREATE TABLE commit_seen (setting text);
    CREATE FUNCTION see_commit() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN INSERT INTO commit_seen VALUES (current_setting('synchronous_commit')); RETURN NULL; END $$;
    CREATE CONSTRAINT TRIGGER see_commit AFTER INSERT ON commit_probe DEFERRABLE INITIALLY DEFERRED
      FOR EACH ROW EXECUTE FUNCTION see_commit();
    GRANT INSERT ON commit_probe, commit_seen TO ${ident(db.roles.app)}`);
  const pool = db.pool(db.roles.app);
  const seen = async () => (await db.admin.query('DELETE FROM commit_seen RETURNING setting')).rows.map((r) => r.setting);
  const insert = 'INSERT INTO commit_probe VALUES (1)';
  await tenantQuery(pool, TENANT_A, insert, [], { key: fence.key });
  assert.deepEqual(await seen(), ['on']);
  await tenantQuery(pool, TENANT_A, insert, [], { key: fence.key, asyncCommit: true });
  assert.deepEqual(await seen(), ['off']);
  await withTenant(pool, TENANT_A, (c) => c.query(insert), { key: fence.key, asyncCommit: true });
  assert.deepEqual(await seen(), ['off']);
  // The next request on the connection is back to the default.
  await tenantQuery(pool, TENANT_A, insert, [], { key: fence.key });
  assert.deepEqual(await seen(), ['on']);
});

test('a prelude runs first in the statement\'s transaction, which is read-only after it; with and without implicit', async () => {
  await db.admin.query(`CREATE TABLE prelude_log (v text); GRANT SELECT, INSERT ON prelude_log TO ${ident(db.roles.app)}`);
  const pool = db.pool(db.roles.app);
  // The same connection without `implicit`: the engine's fallback (BEGIN, the prelude, then read-only).
  const plain = async (): Promise<FenceConnection> => {
    const c = await connect(pool);
    return { pipelining: c.pipelining, query: (t, v) => c.query(t, v), batch: (t) => c.batch(t), transactionStatus: () => c.transactionStatus(), driverStatements: () => c.driverStatements(), failed: () => c.failed(), release: (e) => c.release(e) };
  };
  const logged = async () => (await db.admin.query('SELECT v FROM prelude_log ORDER BY v')).rows.map((r) => r.v);
  for (const [name, acquire] of [['implicit', () => connect(pool)], ['fallback', plain]] as const) {
    const options = { key: fence.key, readOnly: true, prelude: { text: 'INSERT INTO prelude_log VALUES ($1)', values: [name] } };
    const seen = await fencedStatement(acquire, TENANT_A, { text: 'SELECT count(*)::int AS n FROM prelude_log WHERE v = $1', values: [name] }, options);
    assert.deepEqual(seen.rows, [{ n: 1 }], `${name}: the statement sees the prelude's row`);
    assert.ok((await logged()).includes(name), `${name}: the prelude's row committed with the statement`);
    // A statement that writes fails, and takes the prelude's row with it.
    await assert.rejects(fencedStatement(acquire, TENANT_A, { text: "INSERT INTO prelude_log VALUES ('statement')" }, { ...options, prelude: { text: "INSERT INTO prelude_log VALUES ('lost')" } }), code('25006'));
    assert.deepEqual((await logged()).filter((v) => v === 'lost' || v === 'statement'), [], name);
  }
  assert.deepEqual(await logged(), ['fallback', 'implicit']);
});

test('tenantQuery takes the tenant from the request context, and refuses without one', async () => {
  const pool = db.pool(db.roles.app);
  const { rows } = await runWithTenant(TENANT_B, () => tenantQuery<{ n: number }>(pool, undefined, 'SELECT count(*)::int AS n FROM conversations', [], { key: fence.key }));
  assert.equal(rows[0]!.n, 2);
  await assert.rejects(tenantQuery(pool, undefined, 'SELECT 1', [], { key: fence.key }), code(ErrorCodes.NO_TENANT));
  assert.equal(await runWithTenant(TENANT_A, () => withTenant(pool, async (c) => (await c.query('SELECT count(*)::int AS n FROM conversations')).rows[0].n, { key: fence.key })), 3);
});

test('a failed statement in tenantQuery rolls back, keeps its SQLSTATE, and leaves a clean connection', async () => {
  const pool = db.pool(db.roles.app, { max: 1 });
  await assert.rejects(tenantQuery(pool, TENANT_A, `SELECT pg_advisory_lock(7), 1/0`, [], { key: fence.key }), code('22012'));
  const { rows } = await db.admin.query(`SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory'`);
  assert.equal(rows[0].n, 0, 'the session advisory lock taken before the error was released');
  const again = await tenantQuery<{ n: number }>(pool, TENANT_A, 'SELECT count(*)::int AS n FROM conversations', [], { key: fence.key });
  assert.equal(again.rows[0]!.n, 3);
});

test('tenantQuery: a statement that opens a transaction block breaks the fence and the connection goes', async () => {
  const pool = db.pool(db.roles.app, { max: 1 });
  const pid = await backendOf(pool);
  await assert.rejects(tenantQuery(pool, TENANT_A, 'BEGIN', [], { key: fence.key }), code(ErrorCodes.FENCE_BROKEN));
  assert.notEqual(await backendOf(pool), pid, 'the connection left inside a transaction block was destroyed');
});

test('tenantQuery: PREPARE leaves no statement behind for the next request', async () => {
  const pool = db.pool(db.roles.app, { max: 1 });
  const pid = await backendOf(pool);
  await tenantQuery(pool, TENANT_A, `PREPARE sneaky AS SELECT transcript FROM conversations`, [], { key: fence.key });
  const c = await pool.connect();
  try {
    const { rows } = await c.query('SELECT count(*)::int AS n FROM pg_prepared_statements');
    assert.equal(rows[0].n, 0);
  } finally {
    c.release();
  }
  assert.equal(await backendOf(pool), pid, 'DEALLOCATE ALL cleaned it; the connection was kept');
});

for (const pipeline of [false, true]) {
  test(`COMMIT inside withTenant breaks the fence: the call fails, nothing after it commits, the connection goes (pipeline=${pipeline})`, async () => {
    const pool = db.pool(db.roles.app, { max: 1, pipeline } as object);
    const pid = await backendOf(pool);
    await db.admin.query(`CREATE TABLE IF NOT EXISTS scratch (v text); GRANT ALL ON scratch TO ${ident(db.roles.app)}`);
    await assert.rejects(
      withTenant(pool, TENANT_A, async (c) => {
        await c.query('COMMIT');
        await c.query('BEGIN');
        await c.query(`INSERT INTO scratch VALUES ('after the break')`);
        return (await c.query('SELECT count(*)::int AS n FROM conversations')).rows[0].n;
      }, { key: fence.key }),
      code(ErrorCodes.FENCE_BROKEN),
    );
    const { rows } = await db.admin.query(`SELECT count(*)::int AS n FROM scratch`);
    assert.equal(rows[0].n, 0, 'the transaction opened after the break was not committed');
    assert.notEqual(await backendOf(pool), pid);
    await assert.rejects(withTenant(pool, TENANT_A, (c) => c.query('ROLLBACK'), { key: fence.key }), code(ErrorCodes.FENCE_BROKEN));
  });
}

test('a terminated backend gives TF_CONNECTION, never crashes the process, and the pool recovers', async () => {
  const pool = db.pool(db.roles.app, { max: 1 });
  await assert.rejects(
    withTenant(pool, TENANT_A, async (c) => {
      const { rows } = await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      await db.admin.query('SELECT pg_terminate_backend($1)', [rows[0]!.pid]);
      await new Promise((r) => setTimeout(r, 100));
      await c.query('SELECT 1');
    }, { key: fence.key }),
    code(ErrorCodes.CONNECTION),
  );
  const { rows } = await tenantQuery<{ n: number }>(pool, TENANT_B, 'SELECT count(*)::int AS n FROM conversations', [], { key: fence.key });
  assert.equal(rows[0]!.n, 2);
});

test('a seed set by one request does not make the next request\'s random() predictable', async () => {
  const pool = db.pool(db.roles.app, { max: 1 });
  const seeded = async () => (await db.admin.query<{ r: number }>('SELECT setseed(0.25), random() AS r')).rows[0]!.r;
  const predicted = await seeded();
  await withTenant(pool, TENANT_A, (c) => c.query('SELECT setseed(0.25)'), { key: fence.key });
  const next = await withTenant(pool, TENANT_B, async (c) => (await c.query<{ r: number }>('SELECT random() AS r')).rows[0]!.r, { key: fence.key });
  assert.notEqual(next, predicted);
});

test('SQL that drops the driver\'s own prepared statement gets its connection destroyed', async () => {
  const pool = db.pool(db.roles.app, { max: 1 });
  const named = { name: 'mine', text: 'SELECT count(*)::int AS n FROM conversations' };
  await withTenant(pool, TENANT_A, (c) => c.query(named), { key: fence.key });
  const pid = await backendOf(pool);
  await withTenant(pool, TENANT_A, (c) => c.query('DEALLOCATE mine'), { key: fence.key });
  assert.notEqual(await backendOf(pool), pid);
  const n = await withTenant(pool, TENANT_B, async (c) => (await c.query<{ n: number }>(named)).rows[0]!.n, { key: fence.key });
  assert.equal(n, 2, 'the next request re-prepares on a fresh connection instead of failing');
});

test('role-level defaults set by SQL on the shared role cannot change fenced requests', async () => {
  const role = ident(db.roles.app);
  // The role's timeout still applies to the fence's own first statements, before the pins take
  // effect; 20 ms stays well above them on a loaded machine while cancelling any real query.
  await db.admin.query(`ALTER ROLE ${role} SET row_security = off; ALTER ROLE ${role} SET default_transaction_read_only = on;
    ALTER ROLE ${role} SET statement_timeout = 20; ALTER ROLE ${role} SET default_transaction_isolation = 'serializable'`);
  try {
    const pool = db.pool(db.roles.app);
    const seen = await withTenant(pool, TENANT_A, async (c) => {
      await c.query(`UPDATE conversations SET transcript = transcript WHERE false`);
      await c.query('SELECT pg_sleep(0.05)');
      return (await c.query<{ iso: string; n: number }>(`SELECT current_setting('transaction_isolation') AS iso, count(*)::int AS n FROM conversations`)).rows[0];
    }, { key: fence.key });
    assert.deepEqual(seen, { iso: 'read committed', n: 3 });
    const one = await tenantQuery<{ n: number }>(pool, TENANT_B, 'SELECT count(*)::int AS n FROM conversations', [], { key: fence.key });
    assert.equal(one.rows[0]!.n, 2);
  } finally {
    await db.admin.query(`ALTER ROLE ${role} RESET ALL`);
  }
});

test('pinned timeouts apply per transaction: a lock wait ends at the lock timeout', async () => {
  const pool = db.pool(db.roles.app);
  const holder = await db.pool(db.roles.app).connect();
  try {
    await holder.query('BEGIN');
    await holder.query('LOCK TABLE conversations IN ACCESS EXCLUSIVE MODE');
    await assert.rejects(
      tenantQuery(pool, TENANT_A, 'SELECT count(*) FROM conversations', [], { key: fence.key, lockTimeoutMs: 200 }),
      code('55P03'),
    );
  } finally {
    await holder.query('ROLLBACK');
    holder.release();
  }
});

test('a database set up by an earlier tenantfence (no open_fence) gets TF_NOT_INITIALISED until init runs again', async () => {
  const old = await createTestDatabase();
  try {
    const f = await installFence(old);
    await old.admin.query('DROP FUNCTION tenantfence.open_fence(text, text, text, text)');
    const pool = old.pool(old.roles.app);
    await assert.rejects(tenantQuery(pool, TENANT_A, 'SELECT count(*) FROM conversations', [], { key: f.key }), code(ErrorCodes.NOT_INITIALISED));
    await assert.rejects(withTenant(pool, TENANT_A, (c) => c.query('SELECT 1'), { key: f.key }), code(ErrorCodes.NOT_INITIALISED));
    await init({ db: old.admin, appRole: old.roles.app, agentRole: old.roles.agent, secret: formatSecret(f.key) });
    const { rows } = await tenantQuery<{ n: number }>(pool, TENANT_A, 'SELECT count(*)::int AS n FROM conversations', [], { key: f.key });
    assert.equal(rows[0]!.n, (await rowsOf(old, TENANT_A)).length);
  } finally {
    await old.drop();
  }
});
