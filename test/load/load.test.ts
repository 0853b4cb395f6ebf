/**
 * Load and faults (issue 10, item 5): many tenants' reads, writes and attacks interleaved on one
 * pool, directly and through PgBouncer in transaction mode; then backends terminated mid-request.
 * Judged on the data: no request ever sees or writes another tenant's row, every write is
 * all-or-nothing, every failure is a clear TF_ error, and the pool recovers without a restart.
 * TF_LOAD_REQUESTS sets the count (default 100,000 per run).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { tenantQuery, withTenant } from '../../src/adapters/pg.ts';
import { signContext } from '../../src/context/token.ts';
import { ErrorCodes, TenantfenceError } from '../../src/errors.ts';
import { ident } from '../../src/sql/quote.ts';
import { protect } from '../../src/cli/commands/protect.ts';
import { createTestDatabase, installFence, type Fenced, type TestDatabase } from '../support/db.ts';
import { pgbouncerPath, startPgbouncer, type Bouncer } from '../support/pgbouncer.ts';

const TENANTS = 100;
const REQUESTS = Number(process.env.TF_LOAD_REQUESTS ?? 100_000);
const CONCURRENCY = 16;
const tenants = Array.from({ length: TENANTS }, (_, i) => `00000000-0000-4000-8000-${String(i + 1).padStart(12, '0')}`);
const missingBouncer = !pgbouncerPath() && !process.env.CI;

let db: TestDatabase;
let fence: Fenced;
let bouncer: Bouncer | undefined;
before(async () => {
  db = await createTestDatabase();
  fence = await installFence(db);
  await db.admin.query(`INSERT INTO conversations (tenant_id, agent_id, transcript)
    SELECT t::uuid, gen_random_uuid(), 'secret of ' || t FROM unnest($1::text[]) AS t, generate_series(1, 3)`, [tenants]);
  await db.admin.query(`CREATE TABLE ledger (tenant_id uuid NOT NULL, batch uuid NOT NULL, part int NOT NULL, PRIMARY KEY (tenant_id, batch, part));
    ALTER TABLE ledger OWNER TO ${ident(db.roles.owner)}`);
  await protect({ allowGlobalKeys: true, db: db.admin, tables: ['ledger'], appRole: db.roles.app, agentRole: db.roles.agent, agentWrite: false });
  if (!missingBouncer) bouncer = await startPgbouncer(new URL(db.url), db.roles.app, db.password, 4);
});
after(async () => {
  await bouncer?.stop();
  await db.drop();
});

interface Tally {
  reads: number;
  writes: Map<string, string>;
  failedWrites: Map<string, string>;
  attacks: number;
  errors: Map<string, number>;
}

/** One request of a mixed workload; every read is checked row by row against its tenant. */
async function request(pool: pg.Pool, i: number, tally: Tally, tolerate: (e: unknown) => boolean): Promise<void> {
  const tenant = tenants[(i * 7919) % TENANTS]!;
  const other = tenants[(i * 104729 + 1) % TENANTS]!;
  const o = { key: fence.key };
  try {
    switch (i % 10) {
      case 0: case 1: case 2: case 3: case 4: {
        const { rows } = await tenantQuery<{ t: string; x: string }>(pool, tenant, 'SELECT tenant_id::text AS t, transcript AS x FROM conversations', [], o);
        for (const r of rows) assert.equal(r.t, tenant, 'a read saw another tenant\'s row');
        tally.reads += 1;
        return;
      }
      case 5: case 6: {
        const seen = await withTenant(pool, tenant, async (c) => {
          const a = await c.query<{ t: string }>('SELECT tenant_id::text AS t FROM conversations WHERE transcript LIKE $1', ['secret%']);
          const b = await c.query<{ t: string }>('SELECT DISTINCT tenant_id::text AS t FROM ledger');
          return [...a.rows, ...b.rows];
        }, o);
        for (const r of seen) assert.equal(r.t, tenant, 'a read saw another tenant\'s row');
        tally.reads += 1;
        return;
      }
      case 7: case 8: {
        const batch = randomUUID();
        try {
          await withTenant(pool, tenant, async (c) => {
            await c.query('INSERT INTO ledger (tenant_id, batch, part) VALUES ($1, $2, 1)', [tenant, batch]);
            await c.query('INSERT INTO ledger (tenant_id, batch, part) VALUES ($1, $2, 2)', [tenant, batch]);
          }, o);
          tally.writes.set(batch, tenant);
        } catch (error) {
          tally.failedWrites.set(batch, tenant);
          throw error;
        }
        return;
      }
      default: {
        // The attacks of the context's threat model, with the other tenant's id.
        const forged = signContext(fence.key, tenant).replace(`.${tenant}.`, `.${other}.`);
        const seen = await withTenant(pool, tenant, async (c) => {
          if (i % 20 === 9) {
            await c.query(`SELECT set_config('tenantfence.context', $1, true)`, [forged]);
          } else {
            await c.query(`SELECT set_config('tenantfence.context', $1, false)`, [forged]);
          }
          const r = await c.query<{ n: number }>('SELECT count(*)::int AS n FROM conversations WHERE tenant_id = $1', [other]);
          const w = await c.query('UPDATE conversations SET transcript = $2 WHERE tenant_id = $1', [other, 'pwned']);
          return r.rows[0]!.n + (w.rowCount ?? 0);
        }, o);
        assert.equal(seen, 0, 'an attack saw or changed another tenant\'s rows');
        tally.attacks += 1;
      }
    }
  } catch (error) {
    if (error instanceof assert.AssertionError || !tolerate(error)) throw error;
    const code = (error as { code?: string }).code ?? 'none';
    tally.errors.set(code, (tally.errors.get(code) ?? 0) + 1);
  }
}

async function run(pool: pg.Pool, count: number, tolerate: (e: unknown) => boolean = () => false): Promise<Tally> {
  // Each run is judged on its own writes.
  await db.admin.query('TRUNCATE ledger');
  const tally: Tally = { reads: 0, writes: new Map(), failedWrites: new Map(), attacks: 0, errors: new Map() };
  let next = 0;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < count) await request(pool, next++, tally, tolerate);
  }));
  return tally;
}

/** Every write all-or-nothing and in its own tenant; no row of any tenant changed by another. */
async function assertData(tally: Tally): Promise<void> {
  const { rows } = await db.admin.query<{ batch: string; tenant: string; parts: number }>(
    'SELECT batch::text, tenant_id::text AS tenant, count(*)::int AS parts FROM ledger GROUP BY 1, 2');
  const stored = new Map(rows.map((r) => [r.batch, r]));
  for (const r of rows) assert.equal(r.parts, 2, `batch ${r.batch} was half written`);
  for (const [batch, tenant] of tally.writes) assert.equal(stored.get(batch)?.tenant, tenant, 'a committed write is missing or in another tenant');
  for (const r of rows) {
    const expected = tally.writes.get(r.batch) ?? tally.failedWrites.get(r.batch);
    assert.equal(r.tenant, expected, 'a row exists that no request of its tenant wrote');
  }
  const pwned = await db.admin.query(`SELECT count(*)::int AS n FROM conversations WHERE transcript = 'pwned'`);
  assert.equal(pwned.rows[0].n, 0);
}

const poolFor = (options: pg.PoolConfig) => {
  const pool = new pg.Pool({ max: 8, ...options });
  pool.on('error', () => undefined);
  return pool;
};

test(`${REQUESTS} mixed requests over ${TENANTS} tenants, directly: zero cross-tenant rows`, async () => {
  const pool = poolFor({ connectionString: new URL(db.url).toString().replace(/\/\/[^@]*@/, `//${db.roles.app}:${db.password}@`), pipeline: true } as pg.PoolConfig);
  try {
    const tally = await run(pool, REQUESTS);
    assert.equal(tally.errors.size, 0);
    assert.equal(tally.reads + tally.writes.size + tally.attacks, REQUESTS);
    await assertData(tally);
  } finally {
    await pool.end();
  }
});

test(`${REQUESTS} mixed requests through PgBouncer in transaction mode: zero cross-tenant rows`, { skip: missingBouncer && 'pgbouncer not installed' }, async () => {
  const pool = poolFor({ host: '127.0.0.1', port: bouncer!.port, database: 'db', user: 'any', pipeline: true } as pg.PoolConfig);
  try {
    const tally = await run(pool, REQUESTS);
    assert.equal(tally.errors.size, 0);
    await assertData(tally);
  } finally {
    await pool.end();
  }
});

test('backends terminated mid-request: clear errors, all-or-nothing writes, the pool recovers', async () => {
  const url = new URL(db.url).toString().replace(/\/\/[^@]*@/, `//${db.roles.app}:${db.password}@`);
  const pool = poolFor({ connectionString: url, pipeline: true } as pg.PoolConfig);
  let killing = true;
  let killed = 0;
  const killer = (async () => {
    while (killing) {
      const { rows } = await db.admin.query(
        `SELECT pg_terminate_backend(pid) AS t FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid() ORDER BY random() LIMIT 1`,
        [db.roles.app]);
      killed += rows.length;
      await new Promise((r) => setTimeout(r, 15));
    }
  })();
  try {
    const tally = await run(pool, Math.min(REQUESTS, 20_000), (e) => e instanceof TenantfenceError && e.code === ErrorCodes.CONNECTION);
    killing = false;
    await killer;
    assert.ok(killed > 20, `only ${killed} backends were terminated`);
    assert.ok((tally.errors.get(ErrorCodes.CONNECTION) ?? 0) > 0, 'no request saw a terminated backend');
    await assertData(tally);
    // Recovered: the same pool serves every tenant again, without a restart.
    const after = await run(pool, 500);
    assert.equal(after.errors.size, 0);
  } finally {
    killing = false;
    await killer;
    await pool.end();
  }
});
