/**
 * The commands on managed-shaped PostgreSQL (test/support/cluster.ts): the admin is a CREATEROLE
 * database owner with a password, never a superuser. Run once per server version by
 * pg15.test.ts and pg17.test.ts; the tests of a file share one cluster and run in order.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { randomBytes } from 'node:crypto';
import { rolePool, withTenant } from '../../src/adapters/pg.ts';
import { attackConcurrentSession, SESSION_MARKER } from '../support/sessions.ts';
import { parseSecret } from '../../src/context/token.ts';
import { ident, literal } from '../../src/sql/quote.ts';
import { hasVersion, startManagedCluster, type ClusterVersion, type ManagedCluster } from '../support/cluster.ts';
import { runCli, spawnCli } from '../support/cli.ts';
import { TENANT_A, TENANT_B } from '../support/db.ts';
import { jwt, JWT_SECRET } from '../gateway/helpers.ts';

async function asRole<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client(url);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** The user's own migration, run as the admin: a table the audit finds nothing wrong with, with rows. */
async function createSeedTable(url: string): Promise<void> {
  await asRole(url, async (c) => {
    await c.query('CREATE TABLE conversations (tenant_id uuid NOT NULL, id uuid NOT NULL DEFAULT gen_random_uuid(), transcript text, PRIMARY KEY (tenant_id, id))');
    await c.query(
      `INSERT INTO conversations (tenant_id, transcript)
       SELECT t, 'secret of ' || t FROM (VALUES ($1::uuid, 3), ($2::uuid, 2)) AS v(t, n), generate_series(1, n)`,
      [TENANT_A, TENANT_B],
    );
  });
}

/** Rows per tenant as the app role sees them inside withTenant for `tenant`. */
async function seenBy(url: string, secret: string, tenant: string): Promise<Record<string, number>> {
  const pool = new pg.Pool({ connectionString: url, max: 1 });
  try {
    return await withTenant(pool, tenant, async (c) => {
      const { rows } = await c.query<{ tenant_id: string; n: number }>('SELECT tenant_id, count(*)::int AS n FROM conversations GROUP BY 1 ORDER BY 1');
      return Object.fromEntries(rows.map((r) => [r.tenant_id, r.n]));
    }, { key: parseSecret(secret) });
  } finally {
    await pool.end();
  }
}

export function managedSuite(version: ClusterVersion): void {
  // A developer machine without these binaries sees the tests skipped; CI never does.
  const skip = !hasVersion(version) && !process.env.CI && `PostgreSQL ${version} binaries are not installed`;
  let cluster: ManagedCluster;
  const password = randomBytes(12).toString('hex');
  let secret = '';

  before(async () => {
    if (!skip) cluster = await startManagedCluster(version);
  });
  after(() => cluster?.stop());

  test(`PG ${version}, fresh cluster: init, protect, keys, audit, demo and serve as a CREATEROLE database owner`, { skip, timeout: 240_000 }, async () => {
    const admin = { DATABASE_URL: cluster.url() };
    const super_ = await cluster.superQuery<{ rolsuper: boolean; rolcreaterole: boolean }>(`SELECT rolsuper, rolcreaterole FROM pg_roles WHERE rolname = 'admin'`);
    assert.deepEqual(super_.rows[0], { rolsuper: false, rolcreaterole: true });
    await createSeedTable(cluster.url());
    const wrong = runCli(['init'], { DATABASE_URL: cluster.url({ role: 'admin', password: 'wrong' }) });
    assert.equal(wrong.code, 2);
    assert.match(wrong.err, /^tenantfence: TF_CONNECTION: Could not connect to the database: authentication failed/);

    const init = runCli(['init'], admin);
    assert.equal(init.code, 0, init.err);
    secret = /TENANTFENCE_SECRET=(\S+)/.exec(init.out)?.[1] ?? '';
    assert.ok(secret, init.out);
    const { rows: owners } = await cluster.superQuery(
      `SELECT (SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'tenantfence') AS schema,
              (SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'tenantfence.keys'::regclass) AS keys,
              (SELECT pg_get_userbyid(proowner) FROM pg_proc WHERE oid = 'tenantfence.current_tenant()'::regprocedure) AS verifier,
              (SELECT count(*)::int FROM tenantfence.keys) AS stored`,
      [],
      'app',
    );
    assert.deepEqual(owners[0], { schema: 'tenantfence_owner', keys: 'tenantfence_owner', verifier: 'tenantfence_owner', stored: 1 });
    const again = runCli(['init'], admin);
    assert.equal(again.code, 0, again.err);

    const protect = runCli(['protect', 'conversations', '--allow-global-keys'], admin);
    assert.equal(protect.code, 0, protect.err);

    // The app and agent roles get passwords the way a user gives them: as the admin.
    await asRole(cluster.url(), async (c) => {
      for (const role of ['tenantfence_app', 'tenantfence_agent']) await c.query(`ALTER ROLE ${ident(role)} PASSWORD ${literal(password)}`);
    });
    const appUrl = cluster.url({ role: 'tenantfence_app', password });
    assert.deepEqual(await seenBy(appUrl, secret, TENANT_A), { [TENANT_A]: 3 });
    assert.deepEqual(await seenBy(appUrl, secret, TENANT_B), { [TENANT_B]: 2 });

    const listed = runCli(['keys', 'list', '--json'], admin);
    assert.equal(listed.code, 0, listed.err);
    assert.deepEqual(JSON.parse(listed.out), [{ kid: secret.split('.')[0], active: true }]);
    const rotated = runCli(['keys', 'rotate', '--json'], admin);
    assert.equal(rotated.code, 0, rotated.err);
    const next = JSON.parse(rotated.out) as { keyId: string; secret: string };
    assert.deepEqual(await seenBy(appUrl, next.secret, TENANT_B), { [TENANT_B]: 2 }, 'the rotated key signs contexts');

    // Exit 0 at the default --fail-on error: no error-level finding, read as a non-superuser.
    const audit = runCli(['audit'], admin);
    assert.equal(audit.code, 0, audit.err + audit.out);

    const demo = runCli(['demo', '--json', '--database-url', cluster.url()]);
    assert.equal(demo.code, 0, demo.err);
    const result = JSON.parse(demo.out) as { checks: Array<{ passed: boolean }>; attacks: Array<{ fenced: string }> };
    assert.ok(result.checks.length > 0 && result.checks.every((c) => c.passed));
    assert.ok(result.attacks.every((a) => a.fenced === 'blocked'));
    const { rows: left } = await cluster.superQuery<{ n: number }>(
      `SELECT (SELECT count(*) FROM pg_roles WHERE rolname LIKE 'tf\\_demo\\_%') + (SELECT count(*) FROM pg_database WHERE datname LIKE 'tenantfence\\_demo\\_%') AS n`,
    );
    assert.equal(Number(left[0]!.n), 0, 'demo removed its database and roles');

    const gatewayEnv = { DATABASE_URL: cluster.url(), TENANTFENCE_SECRET: secret, TENANTFENCE_JWT_SECRET: JWT_SECRET };
    // Without the agent's password the gateway exits at once and says why.
    const failing = spawnCli(['serve', '--port', '0'], gatewayEnv);
    const failed = await Promise.race([failing.exited, new Promise((r) => setTimeout(() => r('still running'), 20_000))]);
    if (failed === 'still running') failing.child.kill('SIGKILL');
    assert.equal(failed, 2);

    const serve = spawnCli(['serve', '--port', '0'], { ...gatewayEnv, TENANTFENCE_AGENT_DATABASE_URL: cluster.url({ role: 'tenantfence_agent', password }) });
    try {
      const listening = await serve.stderrLine(/listening on http:\/\/127\.0\.0\.1:\d+/);
      const base = /http:\/\/127\.0\.0\.1:\d+/.exec(listening)![0];
      const res = await fetch(`${base}/v1/query`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${await jwt({ tenant_id: TENANT_A }, { expiresIn: '1m' })}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ sql: 'SELECT tenant_id, count(*)::int AS n FROM conversations GROUP BY 1' }),
      });
      assert.equal(res.status, 200);
      assert.deepEqual(((await res.json()) as { rows: unknown[] }).rows, [{ tenant_id: TENANT_A, n: 3 }]);
    } finally {
      serve.child.kill('SIGTERM');
    }
    assert.equal(await serve.exited, 0);
  });

  test(`PG ${version}: init cannot take the signalling functions here; connection roles (init --app-logins, rolePool) stop one tenant's SQL killing or watching another's`, { skip, timeout: 120_000 }, async () => {
    const init = runCli(['init', '--app-logins', '2', '--app-password'], { DATABASE_URL: cluster.url(), TENANTFENCE_SECRET: secret, TENANTFENCE_APP_PASSWORD: password });
    assert.equal(init.code, 0, init.err);
    assert.match(init.err, /can still signal other sessions/, 'the admin could not revoke them');
    const key = parseSecret(secret);
    const insert = 'INSERT INTO conversations (tenant_id, transcript) VALUES ($1, $2)';
    const committed = async () => {
      const { rows } = await cluster.superQuery<{ n: number }>('SELECT count(*)::int AS n FROM conversations WHERE transcript = $1', [SESSION_MARKER], 'app');
      await cluster.superQuery('DELETE FROM conversations WHERE transcript = $1', [SESSION_MARKER], 'app');
      return rows[0]!.n === 1;
    };
    const shared = new pg.Pool({ connectionString: cluster.url({ role: 'tenantfence_app', password }), max: 4 });
    try {
      const r = await attackConcurrentSession(shared, key, insert);
      assert.ok(r.seen.texts.some((t) => t.includes(SESSION_MARKER)) && r.kill.terminated && !r.b.ok, `control: ${JSON.stringify(r)}`);
      assert.equal(await committed(), false);
    } finally {
      await shared.end();
    }
    const roles = rolePool({ connectionString: cluster.url({ role: 'tenantfence_app', password }), roles: ['tenantfence_app_c1', 'tenantfence_app_c2'] });
    try {
      const r = await attackConcurrentSession(roles, key, insert);
      assert.ok(!r.seen.texts.some((t) => t.includes(SESSION_MARKER)), JSON.stringify(r));
      assert.deepEqual(r.kill, { terminated: false, error: '42501' });
      assert.ok(r.b.ok, JSON.stringify(r.b));
      assert.equal(await committed(), true);
    } finally {
      await roles.end();
    }
  });

  test(`PG ${version}: another team's database, where tenantfence's roles already exist (created by the first admin)`, { skip, timeout: 120_000 }, async () => {
    const other = await cluster.createAdmin('other_admin', 'other');
    const otherUrl = cluster.url({ role: other.user, password: other.password, database: 'other' });
    await createSeedTable(otherUrl);
    let init = runCli(['init'], { DATABASE_URL: otherUrl });
    if (version >= 16) {
      // Only the creator of tenantfence_owner (or a superuser) may grant it from 16 on: init says
      // exactly what to run, and installs nothing.
      assert.equal(init.code, 2, init.err);
      assert.match(init.err, /^tenantfence: TF_PRIVILEGE: .*other_admin cannot act as role tenantfence_owner/);
      const grant = /GRANT tenantfence_owner TO other_admin WITH INHERIT TRUE, SET TRUE/.exec(init.err)?.[0];
      assert.ok(grant, init.err);
      const { rows } = await cluster.superQuery(`SELECT to_regnamespace('tenantfence') AS schema`, [], 'other');
      assert.equal(rows[0]?.schema, null, 'nothing installed');
      await asRole(cluster.url(), (c) => c.query(grant));
      init = runCli(['init'], { DATABASE_URL: otherUrl });
    }
    assert.equal(init.code, 0, init.err);
    const otherSecret = /TENANTFENCE_SECRET=(\S+)/.exec(init.out)?.[1] ?? '';
    const protect = runCli(['protect', 'conversations', '--allow-global-keys'], { DATABASE_URL: otherUrl });
    assert.equal(protect.code, 0, protect.err);
    // The roles' passwords were set by the first admin; the keys are this database's own.
    const appUrl = cluster.url({ role: 'tenantfence_app', password, database: 'other' });
    assert.deepEqual(await seenBy(appUrl, otherSecret, TENANT_B), { [TENANT_B]: 2 });
    assert.deepEqual(await seenBy(appUrl, secret, TENANT_B), {}, "the first database's key signs nothing here");
    // A table owned by a role this admin cannot act as: the error names what is missing.
    await cluster.superQuery('CREATE ROLE migrator NOLOGIN');
    await cluster.superQuery('CREATE TABLE ledger (tenant_id uuid NOT NULL, n int, PRIMARY KEY (tenant_id, n)); ALTER TABLE ledger OWNER TO migrator', [], 'other');
    const refused = runCli(['protect', 'ledger'], { DATABASE_URL: otherUrl });
    assert.equal(refused.code, 2);
    assert.match(refused.err, /^tenantfence: TF_PRIVILEGE: The connected role lacks a privilege: must be owner of table ledger; connect as the owner of table ledger, or as a role that can act as its owner\.$/m);
    await cluster.superQuery('DROP TABLE ledger; DROP ROLE migrator', [], 'other');
    const audit = runCli(['audit'], { DATABASE_URL: otherUrl });
    assert.equal(audit.code, 0, audit.err + audit.out);
  });

  test(`PG ${version}: hardening the admin may not apply is reported with the statement to run`, { skip, timeout: 60_000 }, async () => {
    // The shape of a database from PostgreSQL 14 and earlier: schema public owned by the
    // superuser, with CREATE for PUBLIC. The admin's REVOKE only warns there.
    await cluster.superQuery('CREATE DATABASE legacy OWNER admin');
    await cluster.superQuery('ALTER SCHEMA public OWNER TO postgres; GRANT CREATE ON SCHEMA public TO PUBLIC', [], 'legacy');
    const url = cluster.url({ database: 'legacy' });
    const first = runCli(['init'], { DATABASE_URL: url });
    assert.equal(first.code, 0, first.err);
    const warnings = first.err.split('\n').filter((l) => l.startsWith('warning: '));
    assert.equal(warnings.length, 2, first.err);
    assert.match(warnings[0]!, /PUBLIC can still create objects in schema public.* its owner postgres, or a superuser, must run: REVOKE CREATE ON SCHEMA public FROM PUBLIC;$/);
    // The session lockdown (src/sql/lockdown.ts): the functions belong to the bootstrap superuser.
    const lockdown = /can still signal other sessions.*pg_terminate_backend.*a superuser, who must run: (REVOKE EXECUTE ON FUNCTION .*)$/.exec(warnings[1]!);
    assert.ok(lockdown, warnings[1]);
    const { rows: signal } = await cluster.superQuery<{ ok: boolean }>(`SELECT has_function_privilege('tenantfence_app', 'pg_terminate_backend(integer, bigint)', 'EXECUTE') AS ok`, [], 'legacy');
    assert.equal(signal[0]!.ok, true, 'the admin could not take it');
    await cluster.superQuery('REVOKE CREATE ON SCHEMA public FROM PUBLIC', [], 'legacy');
    await cluster.superQuery(lockdown[1]!, [], 'legacy');
    const second = runCli(['init'], { DATABASE_URL: url, TENANTFENCE_SECRET: /TENANTFENCE_SECRET=(\S+)/.exec(first.out)?.[1] });
    assert.equal(second.code, 0, second.err);
    assert.doesNotMatch(second.err, /warning:/);
    const { rows: after } = await cluster.superQuery<{ app: boolean; monitor: boolean }>(
      `SELECT has_function_privilege('tenantfence_app', 'pg_terminate_backend(integer, bigint)', 'EXECUTE') AS app,
              has_function_privilege('pg_signal_backend', 'pg_terminate_backend(integer, bigint)', 'EXECUTE') AS monitor`, [], 'legacy');
    assert.deepEqual(after[0], { app: false, monitor: true }, "the superuser's statement took it from the app role and left it to monitoring");
  });
}
