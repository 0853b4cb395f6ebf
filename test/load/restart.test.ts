/**
 * A PostgreSQL restart under load (issue 10, item 5), on a cluster of the test's own (the machine's
 * server is shared by every test): tenants' writes and the gateway's reads run while the server
 * goes down and comes back. Judged on the data: every write is all-or-nothing and in its own
 * tenant, every failure is TF_CONNECTION, and the same pool and the same gateway serve again
 * afterwards, without a restart of this process.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { tenantQuery, withTenant } from '../../src/adapters/pg.ts';
import { formatSecret, generateKey } from '../../src/context/token.ts';
import { ErrorCodes, TenantfenceError } from '../../src/errors.ts';
import { createGateway, type GatewayApp } from '../../src/gateway/http.ts';
import { init } from '../../src/cli/commands/init.ts';
import { protect } from '../../src/cli/commands/protect.ts';
import { literal } from '../../src/sql/quote.ts';
import { hasVersion, startManagedCluster, type ManagedCluster } from '../support/cluster.ts';
import { JWT_SECRET, jwt, postQuery } from '../gateway/helpers.ts';

const version = hasVersion(15) ? 15 : 17;
const tenants = Array.from({ length: 20 }, (_, i) => `00000000-0000-4000-8000-${String(i + 1).padStart(12, '0')}`);
const key = generateKey('rs');
const password = randomUUID();

let cluster: ManagedCluster;
let appPool: pg.Pool;
let agentPool: pg.Pool;
let gateway: GatewayApp;
before(async () => {
  cluster = await startManagedCluster(version);
  const admin = new pg.Client(cluster.url());
  await admin.connect();
  try {
    await init({ db: admin, appRole: 'rs_app', agentRole: 'rs_agent', secret: formatSecret(key) });
    await admin.query(`ALTER ROLE rs_app PASSWORD ${literal(password)}; ALTER ROLE rs_agent PASSWORD ${literal(password)}`);
    await admin.query(`CREATE TABLE ledger (tenant_id uuid NOT NULL, batch uuid NOT NULL, part int NOT NULL, PRIMARY KEY (tenant_id, batch, part))`);
    await protect({ allowGlobalKeys: true, db: admin, tables: ['ledger'], appRole: 'rs_app', agentRole: 'rs_agent', agentWrite: false });
  } finally {
    await admin.end();
  }
  appPool = new pg.Pool({ connectionString: cluster.url({ role: 'rs_app', password }), max: 6, pipeline: true } as pg.PoolConfig);
  appPool.on('error', () => undefined);
  agentPool = new pg.Pool({ connectionString: cluster.url({ role: 'rs_agent', password }), max: 4, pipeline: true } as pg.PoolConfig);
  agentPool.on('error', () => undefined);
  gateway = createGateway({ pool: agentPool, key, auth: { jwtSecret: JWT_SECRET }, mode: 'read', auditPool: agentPool, limits: { ratePerSecond: 1e6, burst: 1e6, maxConcurrent: 1e4 } });
});
after(async () => {
  await gateway?.close();
  await appPool?.end().catch(() => undefined);
  await agentPool?.end().catch(() => undefined);
  await cluster?.stop();
});

test(`PostgreSQL ${version} restarted under load: all-or-nothing writes, TF_CONNECTION errors, recovery without a restart`, async () => {
  const committed = new Map<string, string>();
  const attempted = new Map<string, string>();
  const errors = new Map<string, number>();
  const token = await jwt({ tenant_id: tenants[0], sub: 'restart' }, { expiresIn: '5m' });
  let gatewayAnswers = 0;
  let gatewayFailures = 0;
  let running = true;
  const worker = async (w: number) => {
    for (let i = 0; running; i++) {
      const tenant = tenants[(w * 7 + i) % tenants.length]!;
      const batch = randomUUID();
      attempted.set(batch, tenant);
      try {
        if (i % 3 === 2) {
          const { rows } = await tenantQuery<{ t: string }>(appPool, tenant, 'SELECT DISTINCT tenant_id::text AS t FROM ledger', [], { key });
          for (const r of rows) assert.equal(r.t, tenant);
        } else {
          await withTenant(appPool, tenant, async (c) => {
            await c.query('INSERT INTO ledger VALUES ($1, $2, 1)', [tenant, batch]);
            await c.query('INSERT INTO ledger VALUES ($1, $2, 2)', [tenant, batch]);
          }, { key });
          committed.set(batch, tenant);
        }
      } catch (error) {
        if (error instanceof assert.AssertionError) throw error;
        assert.ok(error instanceof TenantfenceError && error.code === ErrorCodes.CONNECTION, `unexpected error: ${(error as Error).message}`);
        errors.set(error.code, (errors.get(error.code) ?? 0) + 1);
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  };
  const reader = async () => {
    while (running) {
      const reply = await postQuery(gateway, token, { sql: 'SELECT count(*) AS n FROM ledger' });
      if (reply.status === 200) gatewayAnswers += 1;
      else {
        gatewayFailures += 1;
        assert.ok(reply.status === 503 || reply.status === 500, `gateway answered ${reply.status}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  };
  // A failed check stops every loop, so the test reports it instead of running on.
  const stopping = (p: Promise<void>) => p.catch((error: unknown) => { running = false; throw error; });
  const load = Promise.all([...Array.from({ length: 8 }, (_, w) => stopping(worker(w))), stopping(reader())]);
  await new Promise((r) => setTimeout(r, 1500));
  const before = committed.size;
  await cluster.restart();
  await new Promise((r) => setTimeout(r, 2500));
  running = false;
  await load;
  assert.ok(before > 0 && committed.size > before, `writes committed before (${before}) and after (${committed.size}) the restart`);
  assert.ok((errors.get(ErrorCodes.CONNECTION) ?? 0) > 0, 'no request saw the restart');

  const { rows } = await cluster.superQuery<{ batch: string; tenant: string; parts: number }>(
    'SELECT batch::text, tenant_id::text AS tenant, count(*)::int AS parts FROM ledger GROUP BY 1, 2', [], 'app');
  for (const r of rows) {
    assert.equal(r.parts, 2, `batch ${r.batch} was half written`);
    assert.equal(r.tenant, attempted.get(r.batch), 'a row landed in another tenant');
  }
  const stored = new Set(rows.map((r) => r.batch));
  for (const batch of committed.keys()) assert.ok(stored.has(batch), 'a write reported committed is missing');

  // The same pool and the same gateway serve every tenant again.
  for (const tenant of tenants) await withTenant(appPool, tenant, (c) => c.query('SELECT 1'), { key });
  const again = await postQuery(gateway, token, { sql: 'SELECT count(*) AS n FROM ledger' });
  assert.equal(again.status, 200);
  assert.ok(gatewayAnswers > 0, `the gateway answered ${gatewayAnswers}, failed ${gatewayFailures}`);
});
