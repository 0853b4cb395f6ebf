/**
 * Issue 10: every request logs in as the same app role, so SQL in one request can act on another
 * request's session unless init's lockdown (src/sql/lockdown.ts) took the functions away. Each
 * attack runs for real as the app role inside withTenant, first with the lockdown undone (the
 * server's defaults: it must work, or the test proves nothing), then with it applied (it must
 * fail). Judged on effects: the victim request's outcome, what the attacker's output contained,
 * and the large objects as the superuser sees them.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { urlForRole } from '../../src/embedded/database.ts';
import { withTenant } from '../../src/adapters/pg.ts';
import { planLockdown, SESSION_FUNCTIONS } from '../../src/sql/lockdown.ts';
import { init } from '../../src/cli/commands/init.ts';
import { formatSecret } from '../../src/context/token.ts';
import { createTestDatabase, installFence, TENANT_A, TENANT_B, type Fenced, type TestDatabase } from '../support/db.ts';

let db: TestDatabase;
let fence: Fenced;
before(async () => {
  db = await createTestDatabase();
  fence = await installFence(db);
});
after(() => db.drop());

/** The server's defaults: PUBLIC may execute every listed function and read pg_stat_activity. */
async function undoLockdown(): Promise<void> {
  const names = Object.values(SESSION_FUNCTIONS).flatMap((k) => k.names);
  await db.admin.query(`DO $$ DECLARE f regprocedure; BEGIN
    FOR f IN SELECT oid FROM pg_proc WHERE pronamespace = 'pg_catalog'::regnamespace AND proname = ANY ($1) LOOP
      EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO PUBLIC', f);
    END LOOP;
  END $$`.replace('$1', `ARRAY[${names.map((n) => `'${n}'`).join(',')}]`));
  await db.admin.query('GRANT SELECT ON pg_catalog.pg_stat_activity TO PUBLIC');
}

async function applyLockdown(): Promise<void> {
  await db.admin.query(planLockdown(db.roles).text);
}

/** A request of `tenant` as the app role; an error is returned, not thrown (it is an outcome). */
function request<T>(tenant: string, fn: (c: pg.PoolClient) => Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: Error }> {
  return withTenant(db.pool(db.roles.app, { max: 1 }), tenant, fn, { key: fence.key }).then(
    (value) => ({ ok: true as const, value }),
    (error: Error) => ({ ok: false as const, error }),
  );
}

/** An error's message and its cause's (the driver's), for assertions. */
function errorText(outcome: { ok: boolean; error?: Error }): string {
  const e = outcome.error as (Error & { cause?: { message?: string } }) | undefined;
  return e ? `${e.message} ${e.cause?.message ?? ''}` : 'no error';
}

/**
 * Tenant B's request sleeps a second then counts its rows; meanwhile tenant A's request sends
 * `signal` to B's backend. Returns B's outcome.
 */
async function signalAttack(signal: 'pg_terminate_backend' | 'pg_cancel_backend') {
  let pidOfB!: (pid: number) => void;
  const pid = new Promise<number>((resolve) => (pidOfB = resolve));
  const victim = request(TENANT_B, async (c) => {
    pidOfB((await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid);
    await c.query('SELECT pg_sleep(1)');
    return (await c.query<{ n: number }>('SELECT count(*)::int AS n FROM conversations')).rows[0]!.n;
  });
  const target = await pid;
  await new Promise((r) => setTimeout(r, 150)); // B is inside pg_sleep
  const attack = await request(TENANT_A, (c) => c.query(`SELECT ${signal}($1) AS done`, [target]));
  return { victim: await victim, attack };
}

/** Everything tenant A's probes returned or raised while B's request ran a statement with `marker`. */
async function activityAttack(marker: string): Promise<string> {
  const victim = request(TENANT_B, (c) => c.query(`SELECT pg_sleep(1.2), '${marker}' AS m`));
  await new Promise((r) => setTimeout(r, 200));
  const probes = [
    'SELECT query FROM pg_stat_activity',
    'SELECT query FROM pg_catalog.pg_stat_get_activity(NULL)',
    'SELECT pg_stat_get_backend_activity(b) AS query FROM pg_stat_get_backend_idset() AS b',
  ];
  let seen = '';
  for (const probe of probes) {
    const r = await request(TENANT_A, (c) => c.query(probe));
    seen += r.ok ? JSON.stringify(r.value.rows) : errorText(r);
  }
  assert.equal((await victim).ok, true, "B's request completes");
  return seen;
}

async function largeObjectsOfApp(): Promise<string[]> {
  const { rows } = await db.admin.query<{ oid: string }>(
    'SELECT oid::text FROM pg_largeobject_metadata WHERE lomowner = $1::regrole ORDER BY oid', [db.roles.app]);
  return rows.map((r) => r.oid);
}

/** A's request stores a marker in a large object; B's requests list, read and delete it. */
async function largeObjectAttack(marker: string) {
  const created = await request(TENANT_A, async (c) =>
    (await c.query<{ oid: string }>(`SELECT lo_from_bytea(0, convert_to($1, 'UTF8'))::text AS oid`, [marker])).rows[0]!.oid);
  // Made before the lockdown (or by the app outside a request): B must not reach it either.
  const { rows } = await db.admin.query<{ oid: string }>(`SELECT lo_from_bytea(0, convert_to($1, 'UTF8'))::text AS oid`, [`${marker}-old`]);
  const old = rows[0]!.oid;
  await db.admin.query(`ALTER LARGE OBJECT ${Number(old)} OWNER TO "${db.roles.app}"`);
  const targets = created.ok ? [created.value, old] : [old];
  let readByB = '';
  for (const oid of targets) {
    const read = await request(TENANT_B, (c) => c.query<{ body: string }>(`SELECT convert_from(lo_get($1::oid), 'UTF8') AS body`, [oid]));
    if (read.ok) readByB += read.value.rows[0]!.body;
  }
  const listed = await request(TENANT_B, (c) => c.query<{ oid: string }>('SELECT oid::text FROM pg_largeobject_metadata'));
  const before = await largeObjectsOfApp();
  for (const oid of targets) await request(TENANT_B, (c) => c.query('SELECT lo_unlink($1::oid)', [oid]));
  const after = await largeObjectsOfApp();
  await db.admin.query(`SELECT lo_unlink(oid) FROM pg_largeobject_metadata WHERE lomowner = $1::regrole`, [db.roles.app]);
  return { created: created.ok, listedByB: listed.ok ? listed.value.rows.map((r) => r.oid) : [], readByB, deletedByB: before.filter((o) => !after.includes(o)), old };
}

for (const signal of ['pg_terminate_backend', 'pg_cancel_backend'] as const) {
  test(`${signal}: one tenant's request stops another's only without the lockdown`, async () => {
    await undoLockdown();
    const open = await signalAttack(signal);
    assert.equal(open.attack.ok, true, 'the signal was sent');
    assert.equal(open.victim.ok, false, "without the lockdown B's request is killed (the attack is real)");

    await applyLockdown();
    const locked = await signalAttack(signal);
    assert.equal(locked.attack.ok, false);
    assert.match(errorText(locked.attack), /permission denied for function/);
    assert.deepEqual(locked.victim, { ok: true, value: 2 }, "B's request completes with its rows");
  });
}

test("pg_stat_activity and friends: one tenant's request reads another's SQL text only without the lockdown", async () => {
  await undoLockdown();
  const before = `marker-${randomBytes(6).toString('hex')}`;
  assert.ok((await activityAttack(before)).includes(before), "without the lockdown A reads B's literal (the attack is real)");

  await applyLockdown();
  const after = `marker-${randomBytes(6).toString('hex')}`;
  const seen = await activityAttack(after);
  assert.ok(!seen.includes(after), 'no probe shows the marker');
  assert.match(seen, /permission denied/);
});

test("large objects: one tenant's request lists, reads and deletes another's only without the lockdown", async () => {
  await undoLockdown();
  const before = `marker-${randomBytes(6).toString('hex')}`;
  const open = await largeObjectAttack(before);
  assert.equal(open.created, true);
  assert.ok(open.readByB.includes(before) && open.readByB.includes(`${before}-old`), 'B read both (the attack is real)');
  assert.equal(open.listedByB.length, 2, 'B listed both');
  assert.equal(open.deletedByB.length, 2, 'B deleted both');

  await applyLockdown();
  const after = `marker-${randomBytes(6).toString('hex')}`;
  const locked = await largeObjectAttack(after);
  assert.equal(locked.created, false, 'the app role can no longer create one');
  assert.equal(locked.readByB, '', 'B read nothing');
  assert.deepEqual(locked.deletedByB, [], 'B deleted nothing');
  // What remains visible: the catalog lists the id of a large object that existed before (no content).
  assert.deepEqual(locked.listedByB, [locked.old]);
});

/**
 * Issue 10's question, investigated: would one login role per connection (each a member of the
 * app role) stop requests signalling and watching each other where the lockdown cannot be applied
 * (managed PostgreSQL)? The signal functions and the activity views check the backend's login
 * role, not its group, so yes for requests that run at the same time, even after SET ROLE to the
 * shared role. What a connection leaves on its login role (large objects, ALTER ROLE CURRENT_USER
 * SET) still reaches the next tenant served on the same connection: it does not replace the lockdown.
 */
test('separate login roles in the app role cannot signal or read each other, even with the functions open', async () => {
  await undoLockdown();
  const [one, two] = [db.role('tf_login1'), db.role('tf_login2')];
  for (const r of [one, two]) {
    await db.admin.query(`CREATE ROLE "${r}" LOGIN PASSWORD '${db.password}' IN ROLE "${db.roles.app}"`);
  }
  const connect = async (role: string) => {
    const c = new pg.Client({ connectionString: urlForRole(db.url, role, db.password) });
    await c.connect();
    return c;
  };
  const [attacker, victim] = [await connect(one), await connect(two)];
  try {
    const pid = (await victim.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    const marker = `marker-${randomBytes(6).toString('hex')}`;
    const running = victim.query(`SELECT pg_sleep(1), '${marker}' AS m`).then((r) => r.rows[0]!.m, (e: Error) => e.message);
    await new Promise((r) => setTimeout(r, 200));
    for (const as of ['', `SET ROLE "${db.roles.app}"`]) {
      if (as) await attacker.query(as);
      const seen = await attacker.query('SELECT coalesce(query, \'\') AS q FROM pg_stat_activity WHERE pid = $1', [pid]);
      assert.equal(seen.rows.length, 1, 'the backend is listed');
      assert.ok(!String(seen.rows[0]!.q).includes(marker), `its query text is hidden (${as || 'as the login role'})`);
      // PostgreSQL 15 says "must be a member of the role whose ...", 16 and later "permission denied to ...".
      await assert.rejects(attacker.query('SELECT pg_cancel_backend($1)', [pid]), /must be a member of the role whose query|permission denied to cancel query/);
      await assert.rejects(attacker.query('SELECT pg_terminate_backend($1)', [pid]), /must be a member of the role whose process|permission denied to terminate process/);
    }
    assert.equal(await running, marker, "the victim's statement completed");
  } finally {
    await Promise.all([attacker.end(), victim.end()]);
  }
  await applyLockdown();
});

test('init --print includes the lockdown, and running init again on a locked database changes nothing', async () => {
  const printed = await init({ db: db.admin, appRole: db.roles.app, agentRole: db.roles.agent, print: true });
  assert.match(printed.sql, /REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC, %I, %I/);
  const acl = () => db.admin.query<{ acl: string }>(
    `SELECT string_agg(format('%s=%s', oid::regprocedure, proacl), ' ' ORDER BY oid) AS acl FROM pg_proc WHERE proname IN ('pg_terminate_backend', 'lo_get', 'pg_stat_get_activity')`);
  const before = (await acl()).rows[0]!.acl;
  assert.match(before, /pg_signal_backend=X/);
  const again = await init({ db: db.admin, appRole: db.roles.app, agentRole: db.roles.agent, secret: formatSecret(fence.key) });
  assert.deepEqual(again.warnings, []);
  assert.equal((await acl()).rows[0]!.acl, before);
});

test('after the lockdown, monitoring roles still watch and signal the app role\'s sessions', async () => {
  const monitor = db.role('tf_monitor');
  await db.admin.query(`CREATE ROLE "${monitor}" LOGIN PASSWORD '${db.password}' IN ROLE pg_monitor, pg_signal_backend`);
  const watcher = new pg.Client({ connectionString: urlForRole(db.url, monitor, db.password) });
  await watcher.connect();
  try {
    const marker = `marker-${randomBytes(6).toString('hex')}`;
    const victim = request(TENANT_B, (c) => c.query(`SELECT pg_sleep(5), '${marker}' AS m`));
    let seen: Array<{ pid: number }> = [];
    for (let i = 0; i < 50 && seen.length === 0; i++) {
      seen = (await watcher.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE query LIKE $1', [`%'${marker}'%`])).rows;
      if (seen.length === 0) await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(seen.length, 1, 'pg_monitor sees the query');
    assert.deepEqual((await watcher.query('SELECT pg_cancel_backend($1) AS ok', [seen[0]!.pid])).rows, [{ ok: true }]);
    assert.equal((await victim).ok, false, 'pg_signal_backend cancelled it');
  } finally {
    await watcher.end();
  }
});
