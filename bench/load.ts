/**
 * Load with faults through the gateway (issue 10, item 5, a first part): `node --import tsx
 * bench/load.ts [--requests 100000] [--tenants 100] [--concurrency 16] [--pgbouncer]
 * [--kill-every-ms 0]` against DATABASE_URL (or an embedded PostgreSQL).
 *
 * Each tenant's rows carry its own marker. Requests from random tenants mix reads (70%), writes
 * (20%: an INSERT whose text is unique to the request) and attacks on other tenants (10%). Checked:
 * - no response holds a row of another tenant (cross-tenant rows: must be 0);
 * - every write is all or nothing: a 200 write's row exists, a refused or failed one's does not
 *   (a 503 whose outcome is unknown may go either way, and is counted);
 * - with --kill-every-ms, agent backends are terminated mid-request all along; the process stays
 *   up, errors carry a TF_ code, and the gateway serves again without a restart.
 * With --pgbouncer the agent pool goes through a real PgBouncer in transaction mode.
 * Prints one JSON line; exit 1 on a cross-tenant row or a write that is not all-or-nothing.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { SignJWT } from 'jose';
import { openDatabase, urlForRole } from '../src/embedded/database.ts';
import { loadFirewall } from '../src/gateway/firewall.ts';
import { createGateway } from '../src/gateway/http.ts';
import { createFixture } from '../src/redteam/fixture.ts';
import { startPgbouncer, type Bouncer } from '../test/support/pgbouncer.ts';

const { values } = parseArgs({
  options: { requests: { type: 'string' }, tenants: { type: 'string' }, concurrency: { type: 'string' }, pgbouncer: { type: 'boolean' }, 'kill-every-ms': { type: 'string' } },
});
const REQUESTS = Number(values.requests ?? 100_000);
const TENANTS = Number(values.tenants ?? 100);
const CONCURRENCY = Number(values.concurrency ?? 16);
const KILL_MS = Number(values['kill-every-ms'] ?? 0);

await loadFirewall();
const target = await openDatabase();
const fixture = await createFixture(target.url);
const admin = new pg.Client({ connectionString: fixture.url });
await admin.connect();
let bouncer: Bouncer | undefined;
const started = performance.now();
const statuses = new Map<string, number>();
let crossTenant = 0;
let uncoded = 0;
let killed = 0;
const writes: Array<{ text: string; status: number; code?: string }> = [];
try {
  const tenants = Array.from({ length: TENANTS }, () => ({ id: randomUUID(), marker: `zqT${randomBytes(6).toString('hex')}` }));
  await admin.query(
    `INSERT INTO conversations (tenant_id, agent_id, transcript)
     SELECT t.id, gen_random_uuid(), t.marker || ' #' || i FROM unnest($1::uuid[], $2::text[]) AS t(id, marker), generate_series(1, 5) AS i`,
    [tenants.map((t) => t.id), tenants.map((t) => t.marker)],
  );
  let agentUrl = urlForRole(fixture.url, fixture.roles.agent, fixture.password);
  if (values.pgbouncer) {
    bouncer = await startPgbouncer(new URL(fixture.url), fixture.roles.agent, fixture.password, 8);
    agentUrl = `postgres://${encodeURIComponent(fixture.roles.agent)}:${encodeURIComponent(fixture.password)}@127.0.0.1:${bouncer.port}/db`;
  }
  // Room for every worker beside the connections the limiter keeps for idle tenants (limits.ts).
  const pool = new pg.Pool({ connectionString: agentUrl, max: Math.ceil(CONCURRENCY * 1.5) });
  pool.on('error', () => undefined);
  const auditPool = new pg.Pool({ connectionString: urlForRole(fixture.url, fixture.roles.agent, fixture.password), max: 4 });
  auditPool.on('error', () => undefined);
  const secret = randomBytes(32).toString('hex');
  const app = createGateway({ pool, auditPool, key: fixture.key, auth: { jwtSecret: secret }, mode: 'write', statementTimeoutMs: 5000, limits: { ratePerSecond: 1e6, burst: 1e6, maxConcurrent: CONCURRENCY } });
  const tokens = await Promise.all(
    tenants.map((t) => new SignJWT({ tenant_id: t.id }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('2h').sign(new TextEncoder().encode(secret))),
  );
  const markers = new Set(tenants.map((t) => t.marker));
  let stop = false;
  const killer = KILL_MS > 0
    ? (async () => {
        while (!stop) {
          await new Promise((r) => setTimeout(r, KILL_MS));
          const { rowCount } = await admin.query(
            `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1 AND state = 'active' AND query NOT LIKE '%audit_append%' LIMIT 1`,
            [fixture.roles.agent],
          );
          killed += rowCount ?? 0;
        }
      })()
    : Promise.resolve();
  let next = 0;
  const worker = async () => {
    while (next < REQUESTS) {
      next += 1;
      const i = Math.floor(Math.random() * TENANTS);
      const me = tenants[i]!;
      const roll = Math.random();
      const other = tenants[(i + 1) % TENANTS]!;
      const body = roll < 0.7
        ? { sql: 'SELECT transcript FROM conversations ORDER BY id DESC LIMIT 20' }
        : roll < 0.9
          ? { sql: 'INSERT INTO conversations (tenant_id, agent_id, transcript) VALUES ($1, gen_random_uuid(), $2) RETURNING transcript', params: [me.id, `${me.marker} w:${randomUUID()}`] }
          : { sql: 'SELECT transcript FROM conversations WHERE tenant_id = $1 OR true', params: [other.id] };
      const res = await app.request('/v1/query', { method: 'POST', headers: { Authorization: `Bearer ${tokens[i]}` }, body: JSON.stringify(body) });
      const reply = (await res.json()) as { rows?: Array<{ transcript: string }>; error?: { code?: string } };
      const key = `${res.status}${reply.error?.code ? ` ${reply.error.code}` : ''}`;
      statuses.set(key, (statuses.get(key) ?? 0) + 1);
      if (res.status !== 200 && !/^TF_/.test(reply.error?.code ?? '')) uncoded += 1;
      for (const row of reply.rows ?? []) {
        const owner = row.transcript.split(' ')[0]!;
        if (markers.has(owner) && owner !== me.marker) crossTenant += 1;
      }
      if (roll >= 0.7 && roll < 0.9) writes.push({ text: (body.params as string[])[1]!, status: res.status, ...(reply.error?.code ? { code: reply.error.code } : {}) });
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  stop = true;
  await killer;
  // The gateway serves again after the faults, without a restart.
  const after = await app.request('/v1/query', { method: 'POST', headers: { Authorization: `Bearer ${tokens[0]}` }, body: JSON.stringify({ sql: 'SELECT count(*) FROM conversations' }) });
  const { rows } = await admin.query<{ transcript: string }>("SELECT transcript FROM conversations WHERE transcript LIKE '% w:%'");
  const stored = new Set(rows.map((r) => r.transcript));
  const lost = writes.filter((w) => w.status === 200 && !stored.has(w.text)).length;
  const ghosts = writes.filter((w) => w.status !== 200 && w.status !== 503 && stored.has(w.text)).length;
  const unknown = writes.filter((w) => w.status === 503).length;
  await app.close();
  await Promise.all([pool.end(), auditPool.end()]);
  const result = {
    requests: REQUESTS, tenants: TENANTS, concurrency: CONCURRENCY, pgbouncer: Boolean(values.pgbouncer), backendsTerminated: killed,
    crossTenantRows: crossTenant, writes: writes.length, writesCommittedButReportedFailed: ghosts, writesReportedButLost: lost, writesOutcomeUnknown: unknown,
    errorsWithoutCode: uncoded, servesAfterFaults: after.status === 200, statuses: Object.fromEntries([...statuses].sort()),
    seconds: Math.round((performance.now() - started) / 1000),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exitCode = crossTenant + ghosts + lost + uncoded > 0 || after.status !== 200 ? 1 : 0;
} finally {
  await admin.end().catch(() => undefined);
  await bouncer?.stop();
  await fixture.drop();
  await target.close();
}
