/**
 * `npm run bench:audit` (a benchmark, not a test): a database with 1,000 tenant tables, most of them
 * protected by tenantfence and some carrying pitfalls (RLS off, a settable-context policy, a global
 * unique key, a view), then the audit timed end to end. Target (issue 4): under 10 s.
 * Uses DATABASE_URL when set, else an embedded PostgreSQL; the database is dropped afterwards.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { startEmbedded } from '../src/embedded/index.ts';
import { urlForDatabase } from '../src/embedded/database.ts';
import { ident } from '../src/sql/quote.ts';
import { init } from '../src/cli/commands/init.ts';
import { protect } from '../src/cli/commands/protect.ts';
import { formatSecret, generateKey } from '../src/context/token.ts';
import { runAudit } from '../src/audit/runner.ts';

const TABLES = Number(process.env.BENCH_TABLES ?? 1000);
const RUNS = 3;

const embedded = process.env.DATABASE_URL ? undefined : await startEmbedded();
const serverUrl = process.env.DATABASE_URL ?? embedded!.url;
const suffix = randomBytes(4).toString('hex');
const name = `tenantfence_bench_${suffix}`;
const roles = { app: `tf_bench_app_${suffix}`, agent: `tf_bench_agent_${suffix}`, owner: `tf_bench_owner_${suffix}` };
const server = new pg.Client(serverUrl);
await server.connect();
await server.query(`CREATE DATABASE ${ident(name)}`);
const db = new pg.Client(urlForDatabase(serverUrl, name));
await db.connect();
try {
  const t0 = performance.now();
  await init({ db, appRole: roles.app, agentRole: roles.agent, secret: formatSecret(generateKey('b1')) });
  await db.query(`CREATE ROLE ${ident(roles.owner)} NOLOGIN`);
  const names = Array.from({ length: TABLES }, (_, i) => `t${String(i).padStart(4, '0')}`);
  await db.query('BEGIN');
  for (const [i, t] of names.entries()) {
    const email = i % 25 === 0 ? ', email text UNIQUE' : '';
    await db.query(`CREATE TABLE ${ident(t)} (tenant_id uuid NOT NULL, id uuid NOT NULL DEFAULT gen_random_uuid(),
      body text${email}, created_at timestamptz DEFAULT now(), PRIMARY KEY (tenant_id, id));
      ALTER TABLE ${ident(t)} OWNER TO ${ident(roles.owner)}`);
  }
  await db.query('COMMIT');
  const protectedNames = names.filter((_, i) => i % 10 !== 0);
  for (let i = 0; i < protectedNames.length; i += 100) {
    await protect({ db, tables: protectedNames.slice(i, i + 100), appRole: roles.app, agentRole: roles.agent });
  }
  for (const [i, t] of names.entries()) {
    if (i % 10 === 3) await db.query(`CREATE POLICY legacy ON ${ident(t)} USING (tenant_id = current_setting('app.tenant_id')::uuid)`);
    if (i % 50 === 7) await db.query(`CREATE VIEW ${ident(`${t}_v`)} AS SELECT * FROM ${ident(t)}; GRANT SELECT ON ${ident(`${t}_v`)} TO PUBLIC`);
  }
  await db.query('ANALYZE');
  console.log(`built ${TABLES} tables in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  const times: number[] = [];
  const ruleTimes = new Map<string, number>();
  let findings = 0;
  for (let run = 0; run < RUNS; run++) {
    const start = performance.now();
    const report = await runAudit(db, { schemas: ['public'], tenantColumn: 'tenant_id', appRole: roles.app, agentRole: roles.agent,
      onRule: (id, ms) => ruleTimes.set(id, ms) });
    times.push(performance.now() - start);
    findings = report.findings.length;
  }
  const { rows } = await db.query<{ server_version: string }>('SHOW server_version');
  console.log(`audit of ${TABLES} tenant tables (PostgreSQL ${rows[0]!.server_version}): ${findings} findings; ` +
    `runs ${times.map((t) => `${(t / 1000).toFixed(2)} s`).join(', ')}; best ${(Math.min(...times) / 1000).toFixed(2)} s (target < 10 s)`);
  const top = [...ruleTimes].sort((a, b) => b[1] - a[1]).slice(0, 5);
  console.log(`slowest rules of the last run: ${top.map(([id, ms]) => `${id} ${ms.toFixed(0)} ms`).join(', ')}`);
} finally {
  await db.end();
  await server.query(`DROP DATABASE IF EXISTS ${ident(name)} WITH (FORCE)`);
  for (const r of Object.values(roles)) await server.query(`DROP ROLE IF EXISTS ${ident(r)}`).catch(() => undefined);
  await server.end();
  await embedded?.stop();
}

