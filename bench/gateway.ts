/**
 * `npm run bench:gateway`: a tenant's latest-20 query through the gateway's HTTP API (a real server
 * on 127.0.0.1, keep-alive HTTP/1.1 client) against the same query sent directly with node-postgres,
 * in the same run, on the same database. Prints p50/p99 latency, requests/s and the ratios.
 *
 * Data: 100,000 conversations across 100 tenants, an index on (tenant_id, created_at DESC).
 * Without DATABASE_URL an embedded PostgreSQL is started and discarded. Bounded: a fixed number of
 * requests per run, loopback only. `BENCH_REQUESTS` changes the count (default 3000).
 */
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { Agent, request } from 'node:http';
import pg from 'pg';
import { SignJWT } from 'jose';
import { openDatabase, urlForDatabase, urlForRole } from '../src/embedded/database.ts';
import { init } from '../src/cli/commands/init.ts';
import { protect } from '../src/cli/commands/protect.ts';
import { SEED_TABLE } from '../src/cli/commands/demo.ts';
import { serve } from '../src/cli/commands/serve.ts';
import { withTenant } from '../src/adapters/pg.ts';
import { formatSecret, generateKey } from '../src/context/token.ts';
import { ident, literal } from '../src/sql/quote.ts';

const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 3000);
const TENANTS = 100;
const ROWS = 100_000;
const JWT_SECRET = randomBytes(32).toString('base64url');
const LATEST = 'SELECT id, agent_id, transcript, created_at FROM conversations ORDER BY created_at DESC LIMIT 20';
const LATEST_FILTERED = 'SELECT id, agent_id, transcript, created_at FROM conversations WHERE tenant_id = $1 ORDER BY created_at DESC LIMIT 20';

interface Stats { p50: number; p99: number; rps: number }

async function measure(concurrency: number, run: (i: number) => Promise<void>): Promise<Stats> {
  for (let i = 0; i < 300; i++) await run(i);
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < REQUESTS) {
      const i = next++;
      const t = performance.now();
      await run(i);
      latencies.push(performance.now() - t);
    }
  }));
  const elapsed = performance.now() - started;
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!;
  return { p50: at(0.5), p99: at(0.99), rps: (REQUESTS / elapsed) * 1000 };
}

function post(agent: Agent, url: URL, token: string, body: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', agent, headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        if (res.statusCode !== 200) return reject(new Error(`HTTP ${res.statusCode}: ${Buffer.concat(chunks).toString().slice(0, 200)}`));
        const parsed = JSON.parse(Buffer.concat(chunks).toString()) as { rows: unknown[] };
        if (parsed.rows.length !== 20) return reject(new Error(`expected 20 rows, got ${parsed.rows.length}`));
        resolve();
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function main(): Promise<void> {
  const target = await openDatabase();
  const suffix = randomBytes(4).toString('hex');
  const database = `tenantfence_bench_${suffix}`;
  const roles = { app: `tf_bench_app_${suffix}`, agent: `tf_bench_agent_${suffix}`, owner: `tf_bench_owner_${suffix}` };
  const password = randomBytes(12).toString('hex');
  const server = new pg.Client({ connectionString: target.url });
  await server.connect();
  await server.query(`CREATE DATABASE ${ident(database)}`);
  const url = urlForDatabase(target.url ?? 'postgres://postgres@127.0.0.1:5432/postgres', database);
  const admin = new pg.Client({ connectionString: url });
  const pools: pg.Pool[] = [];
  const stops: Array<() => Promise<void>> = [];
  try {
    await admin.connect();
    const key = generateKey('bench');
    await init({ db: admin, appRole: roles.app, agentRole: roles.agent, secret: formatSecret(key) });
    for (const r of [roles.app, roles.agent]) await admin.query(`ALTER ROLE ${ident(r)} PASSWORD ${literal(password)}`);
    await admin.query(`CREATE ROLE ${ident(roles.owner)} NOLOGIN`);
    await admin.query(SEED_TABLE);
    await admin.query(`ALTER TABLE conversations OWNER TO ${ident(roles.owner)}`);
    await admin.query(`CREATE INDEX conversations_tenant_created_idx ON conversations (tenant_id, created_at DESC)`);
    await protect({ db: admin, tables: ['conversations'], appRole: roles.app, agentRole: roles.agent });
    const tenants = Array.from({ length: TENANTS }, (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`);
    await admin.query(
      `INSERT INTO conversations (tenant_id, agent_id, transcript, created_at)
       SELECT ($1::uuid[])[1 + i % ${TENANTS}], gen_random_uuid(), 'transcript ' || i, now() - i * interval '1 minute'
         FROM generate_series(1, ${ROWS}) AS i`,
      [tenants],
    );
    await admin.query('VACUUM ANALYZE conversations');
    const tokens = await Promise.all(tenants.map((t) => new SignJWT({ tenant_id: t, sub: 'bench' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(new TextEncoder().encode(JWT_SECRET))));
    const tenantOf = (i: number) => tenants[(i * 37) % TENANTS]!;
    const tokenOf = (i: number) => tokens[(i * 37) % TENANTS]!;
    const agentUrl = urlForRole(url, roles.agent, password);
    const env = { TENANTFENCE_AGENT_DATABASE_URL: agentUrl, TENANTFENCE_SECRET: formatSecret(key), TENANTFENCE_JWT_SECRET: JWT_SECRET };
    const unlimited = { limits: { ratePerSecond: 1e6, burst: 1e6, maxConcurrent: 1e4 }, poolSize: 10 };

    // The baseline: app-layer filtering, one plain query with WHERE tenant_id = $1 (run as the
    // database owner, which RLS does not filter). Then the same rows through tenantfence's own
    // adapter (withTenant: signed context, RLS), then through the gateway.
    const plain = new pg.Pool({ connectionString: url, max: 10 });
    const rls = new pg.Pool({ connectionString: urlForRole(url, roles.app, password), max: 10, pipeline: true } as pg.PoolConfig);
    // An idle connection can be closed under a pool at teardown (DROP DATABASE ... FORCE); that is
    // not a benchmark failure, so neither pool may crash the process with an unhandled 'error'.
    for (const [name, p] of [["plain", plain], ["rls", rls]] as const) p.on("error", (e) => console.error(`# ${name} pool error ${(e as { code?: string }).code} at ${new Date().toISOString()}: ${e.message}`));
    pools.push(plain, rls);
    const results: Array<[string, number, Stats]> = [];
    const body = JSON.stringify({ sql: LATEST });
    for (const concurrency of [1, 8]) {
      results.push(['direct pg (WHERE tenant_id = $1)', concurrency, await measure(concurrency, async (i) => {
        const { rows } = await plain.query(LATEST_FILTERED, [tenantOf(i)]);
        if (rows.length !== 20) throw new Error('direct: expected 20 rows');
      })]);
      results.push(['withTenant + RLS (pipelined pg)', concurrency, await measure(concurrency, async (i) => {
        const { rows } = await withTenant(rls, tenantOf(i), (c) => c.query(LATEST), { key });
        if (rows.length !== 20) throw new Error('withTenant: expected 20 rows');
      })]);
      {
        // The gateway as deployed: its own process (`tenantfence serve`), so client and server
        // do not share one event loop.
        const gw = await spawnServe(env);
        stops.push(gw.close);
        const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
        const endpoint = new URL(`${gw.url}/v1/query`);
        results.push(['gateway HTTP, own process', concurrency, await measure(concurrency, (i) => post(agent, endpoint, tokenOf(i), body))]);
        agent.destroy();
        await gw.close();
        stops.pop();
      }
      for (const pipeline of [true, false]) {
        const gw = await serve({ port: 0, env, gateway: { ...unlimited, pipeline } });
        stops.push(() => gw.close());
        const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
        const endpoint = new URL(`${gw.url}/v1/query`);
        results.push([`gateway HTTP in-process, pipeline=${pipeline}`, concurrency, await measure(concurrency, (i) => post(agent, endpoint, tokenOf(i), body))]);
        agent.destroy();
        await gw.close();
        stops.pop();
      }
    }
    print(results);
  } finally {
    for (const stop of stops) await stop().catch(() => undefined);
    await Promise.all(pools.map((p) => p.end().catch(() => undefined)));
    await admin.end().catch(() => undefined);
    await server.query(`DROP DATABASE IF EXISTS ${ident(database)} WITH (FORCE)`).catch(() => undefined);
    for (const r of Object.values(roles)) await server.query(`DROP ROLE IF EXISTS ${ident(r)}`).catch(() => undefined);
    await server.end();
    await target.close();
  }
}

/** `tenantfence serve --port 0` in a child process; resolves with its URL once it listens. */
function spawnServe(env: Record<string, string>): Promise<{ url: string; close: () => Promise<void> }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/bin.ts', 'serve', '--port', '0'], {
      env: { PATH: process.env.PATH ?? '', ...env, TENANTFENCE_RATE_PER_SECOND: '1000000', TENANTFENCE_BURST: '1000000', TENANTFENCE_MAX_CONCURRENT: '10000' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    const close = () => new Promise<void>((done) => (child.exitCode !== null ? done() : (child.once('exit', () => done()), child.kill('SIGTERM'))));
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /listening on (http:\/\/[0-9.:]+)/.exec(err);
      if (m) resolve({ url: m[1]!, close });
    });
    child.once('exit', (code) => reject(new Error(`tenantfence serve exited (${code}): ${err.slice(0, 500)}`)));
  });
}

function print(results: Array<[string, number, Stats]>): void {
  const ms = (x: number) => `${x.toFixed(3)} ms`;
  console.log(`\nlatest-20 query, ${ROWS} rows / ${TENANTS} tenants, ${REQUESTS} requests per line, loopback\n`);
  console.log(`${'path'.padEnd(40)} ${'conc'.padStart(4)} ${'p50'.padStart(11)} ${'p99'.padStart(11)} ${'req/s'.padStart(8)}  p50 vs direct  vs withTenant`);
  for (const [name, conc, s] of results) {
    const base = results.find(([n, c]) => n.startsWith('direct') && c === conc)![2];
    const fenced = results.find(([n, c]) => n.startsWith('withTenant') && c === conc)![2];
    console.log(`${name.padEnd(40)} ${String(conc).padStart(4)} ${ms(s.p50).padStart(11)} ${ms(s.p99).padStart(11)} ${s.rps.toFixed(0).padStart(8)}  ${(s.p50 / base.p50).toFixed(2)}x  ${(s.p50 / fenced.p50).toFixed(2)}x`);
  }
}

await main();
