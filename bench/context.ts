/**
 * What the fence costs, measured against baselines in the same run (never asserted in tests).
 *
 *   npm run bench:context            (embedded PostgreSQL, or DATABASE_URL)
 *
 * 1. Server: µs per statement of the same indexed query under (a) no RLS with an app-layer
 *    `WHERE tenant_id = $1`, (b) the seed's GUC policy, (c) tenantfence's verified policy; each
 *    run inside one transaction in a PL/pgSQL loop, so no network is counted.
 * 2. Client: a request of one query ("a tenant's latest 20") from Node over loopback: the query
 *    alone (app-layer filtering), withTenant on an ordinary pool, on a pipelining pool, and in
 *    strict (transaction-bound) mode. p50/p99 latency and requests/s, as ratios to the query alone.
 */
import pg from 'pg';
import { randomBytes } from 'node:crypto';
import { withTenant } from '../src/adapters/pg.ts';
import { formatSecret, generateKey, signContext } from '../src/context/token.ts';
import { openDatabase, urlForDatabase, urlForRole } from '../src/embedded/database.ts';
import { init } from '../src/cli/commands/init.ts';
import { protect } from '../src/cli/commands/protect.ts';
import { ident, literal } from '../src/sql/quote.ts';

const TENANTS = 100;
const ROWS_PER_TENANT = 1000;
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 3000);
const LOOP = 20_000;

const target = await openDatabase();
const server = new pg.Client(target.url);
await server.connect();
const suffix = randomBytes(4).toString('hex');
const dbName = `tf_bench_${suffix}`;
const roles = { app: `tf_bench_app_${suffix}`, agent: `tf_bench_agent_${suffix}`, naive: `tf_bench_naive_${suffix}` };
const password = randomBytes(12).toString('hex');
await server.query(`CREATE DATABASE ${ident(dbName)}`);
const url = urlForDatabase(target.url ?? 'postgres://postgres@127.0.0.1:5432/postgres', dbName);
const admin = new pg.Client(url);
await admin.connect();
const pools: pg.Pool[] = [];
try {
  const key = generateKey('bench');
  await init({ db: admin, appRole: roles.app, agentRole: roles.agent, secret: formatSecret(key) });
  await admin.query(`ALTER ROLE ${ident(roles.app)} PASSWORD ${literal(password)}`);
  await admin.query(`CREATE ROLE ${ident(roles.naive)} LOGIN PASSWORD ${literal(password)}`);
  for (const t of ['plain', 'naive', 'fenced']) {
    await admin.query(`CREATE TABLE ${t} (id bigint GENERATED ALWAYS AS IDENTITY, tenant_id uuid NOT NULL, body text, created_at timestamptz NOT NULL, PRIMARY KEY (tenant_id, id))`);
    await admin.query(`CREATE INDEX ${t}_latest ON ${t} (tenant_id, created_at DESC)`);
    await admin.query(
      `INSERT INTO ${t} (tenant_id, body, created_at)
       SELECT ('00000000-0000-0000-0000-' || lpad(tn::text, 12, '0'))::uuid, repeat('x', 80), now() - (r || ' minutes')::interval
         FROM generate_series(1, ${TENANTS}) tn, generate_series(1, ${ROWS_PER_TENANT}) r`,
    );
  }
  await admin.query(`ALTER TABLE naive ENABLE ROW LEVEL SECURITY; ALTER TABLE naive FORCE ROW LEVEL SECURITY;
    CREATE POLICY p ON naive USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));
    GRANT SELECT ON plain, naive TO ${ident(roles.naive)}; GRANT SELECT ON plain TO ${ident(roles.app)}`);
  await protect({ db: admin, tables: ['fenced'], appRole: roles.app, agentRole: roles.agent });
  await admin.query('ANALYZE');

  const tenant = '00000000-0000-0000-0000-000000000042';
  console.log(`# ${TENANTS} tenants x ${ROWS_PER_TENANT} rows; ${(await admin.query('SHOW server_version')).rows[0].server_version}; ${target.embedded ? 'embedded' : 'DATABASE_URL'}`);

  // 1. Server-side cost per statement.
  const serverCost = async (role: string, setup: string, query: string) => {
    const c = new pg.Client(urlForRole(url, role, password));
    await c.connect();
    await c.query('BEGIN');
    await c.query(setup.replace('$TOKEN', literal(signContext(key, tenant))));
    const loop = `DO $b$ DECLARE n int; BEGIN FOR i IN 1..${LOOP} LOOP ${query} END LOOP; END $b$`;
    await c.query(loop); // warm
    const t0 = process.hrtime.bigint();
    await c.query(loop);
    const us = Number(process.hrtime.bigint() - t0) / 1000 / LOOP;
    await c.query('ROLLBACK');
    await c.end();
    return us;
  };
  const q = (table: string, filter: string) => `SELECT count(*) INTO n FROM (SELECT id FROM ${table} WHERE ${filter} ORDER BY created_at DESC LIMIT 20) s;`;
  const plain = await serverCost(roles.naive, 'SELECT 1', q('plain', `tenant_id = ${literal(tenant)}`));
  const naive = await serverCost(roles.naive, `SET LOCAL app.tenant_id = ${literal(tenant)}`, q('naive', 'true'));
  const fenced = await serverCost(roles.app, `SELECT set_config('tenantfence.context', $TOKEN, true)`, q('fenced', 'true'));
  const verifier = await serverCost(roles.app, `SELECT set_config('tenantfence.context', $TOKEN, true)`, 'PERFORM tenantfence.current_tenant();');
  const empty = await serverCost(roles.app, 'SELECT 1', 'PERFORM 1;');
  console.log('\n## server, per statement (latest 20 of one tenant, in a PL/pgSQL loop)');
  console.log(`app-layer WHERE (baseline)   ${plain.toFixed(2)} µs   1.00x`);
  console.log(`seed GUC policy              ${naive.toFixed(2)} µs   ${(naive / plain).toFixed(2)}x`);
  console.log(`tenantfence verified policy  ${fenced.toFixed(2)} µs   ${(fenced / plain).toFixed(2)}x   (+${(fenced - plain).toFixed(2)} µs)`);
  console.log(`current_tenant() alone       ${(verifier - empty).toFixed(2)} µs per call (loop overhead ${empty.toFixed(2)} µs removed)`);

  // 2. Client-side requests.
  const pool = (role: string, extra: object = {}) => {
    const p = new pg.Pool({ connectionString: urlForRole(url, role, password), max: 4, ...extra });
    pools.push(p);
    return p;
  };
  const plainPool = pool(roles.naive);
  const appPool = pool(roles.app);
  const pipePool = pool(roles.app, { pipeline: true });
  const latest = (table: string, filtered: boolean) =>
    `SELECT id, body, created_at FROM ${table} ${filtered ? 'WHERE tenant_id = $1' : ''} ORDER BY created_at DESC LIMIT 20`;
  const scenarios: Array<[string, () => Promise<unknown>]> = [
    ['query alone, app-layer WHERE (baseline)', () => plainPool.query(latest('plain', true), [tenant])],
    ['withTenant, ordinary pool (4 round trips)', () => withTenant(appPool, tenant, (c) => c.query(latest('fenced', false), []), { key })],
    ['withTenant, pipeline pool (2 round trips)', () => withTenant(pipePool, tenant, (c) => c.query(latest('fenced', false), []), { key })],
    ['withTenant, strict xid-bound (5 round trips)', () => withTenant(appPool, tenant, (c) => c.query(latest('fenced', false), []), { key, bindToTransaction: true })],
  ];
  console.log(`\n## client, one request = one query, ${REQUESTS} requests, concurrency 4, loopback`);
  let base: { p50: number; rps: number } | undefined;
  for (const [name, fn] of scenarios) {
    for (let i = 0; i < 200; i++) await fn(); // warm
    const lat: number[] = [];
    const t0 = process.hrtime.bigint();
    let next = 0;
    await Promise.all(Array.from({ length: 4 }, async () => {
      while (next++ < REQUESTS) {
        const s = process.hrtime.bigint();
        await fn();
        lat.push(Number(process.hrtime.bigint() - s) / 1000);
      }
    }));
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    lat.sort((a, b) => a - b);
    const r = { p50: lat[Math.floor(lat.length * 0.5)]!, p99: lat[Math.floor(lat.length * 0.99)]!, rps: REQUESTS / secs };
    base ??= r;
    console.log(`${name.padEnd(46)} p50 ${r.p50.toFixed(0).padStart(5)} µs (${(r.p50 / base.p50).toFixed(2)}x)  p99 ${r.p99.toFixed(0).padStart(5)} µs  ${r.rps.toFixed(0).padStart(6)} req/s (${(r.rps / base.rps).toFixed(2)}x)`);
  }
} finally {
  await Promise.all(pools.map((p) => p.end()));
  await admin.end();
  await server.query(`DROP DATABASE IF EXISTS ${ident(dbName)} WITH (FORCE)`);
  for (const r of Object.values(roles)) await server.query(`DROP ROLE IF EXISTS ${ident(r)}`).catch(() => undefined);
  await server.end();
  await target.close();
}
