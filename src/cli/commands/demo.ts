/**
 * `tenantfence demo`: the seed recipe end to end, then the same agent attacks against the seed's
 * recipe verbatim (a policy on a GUC, `SET LOCAL` with the tenant spliced into SQL) and against
 * tenantfence. Every verdict is read from the data: an attack "leaked" when tenant A's session saw
 * at least one of tenant B's rows.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import { ErrorCodes } from '../../errors.ts';
import { withTenant, type PgClientLike } from '../../adapters/pg.ts';
import { generateKey, signContext, CONTEXT_SETTING } from '../../context/token.ts';
import { connect, urlForDatabase, urlForRole } from '../../embedded/database.ts';
import { ident, literal } from '../../sql/quote.ts';
import { actAs } from '../../sql/membership.ts';
import { init } from './init.ts';
import { protect } from './protect.ts';

export interface DemoCheck {
  readonly id: string;
  readonly passed: boolean;
  readonly detail: string;
}
export interface DemoAttack {
  readonly id: string;
  readonly naive: 'leaked' | 'blocked';
  readonly fenced: 'leaked' | 'blocked';
}
export interface DemoResult {
  readonly checks: DemoCheck[];
  readonly attacks: DemoAttack[];
}

const TENANT_A = '11111111-1111-1111-1111-111111111111';
const TENANT_B = '22222222-2222-2222-2222-222222222222';

/** The seed's schema, verbatim in shape (the tests and the gateway bench build the same table). */
export const SEED_TABLE = `CREATE TABLE conversations (
  id BIGSERIAL PRIMARY KEY,
  tenant_id UUID NOT NULL,
  agent_id UUID NOT NULL,
  transcript TEXT,
  created_at TIMESTAMPTZ DEFAULT now()
)`;

/**
 * An attack is the SQL an agent sends inside tenant A's transaction. `switchTo` is what it writes
 * into the tenant setting: tenant B's id for the seed's recipe, a token for B forged from A's own
 * (same key id and expiry, tenant swapped) for tenantfence. The last statement reads B's rows.
 */
interface Attack {
  readonly id: string;
  steps(setting: string, switchTo: string): string[];
}

const countB = `SELECT count(*)::int AS b_rows FROM conversations WHERE tenant_id = ${literal(TENANT_B)}`;

export const ATTACKS: readonly Attack[] = [
  {
    id: 'set_config-in-select',
    steps: (s, v) => [`SELECT set_config(${literal(s)}, ${literal(v)}, true) AS switched, (${countB}) AS b_rows`],
  },
  { id: 'set-local-switch', steps: (s, v) => [`SET LOCAL ${ident(s.split('.')[0]!)}.${ident(s.split('.')[1]!)} = ${literal(v)}`, countB] },
  { id: 'set-session-switch', steps: (s, v) => [`SELECT set_config(${literal(s)}, ${literal(v)}, false)`, countB] },
  { id: 'reset', steps: (s) => [`RESET ${ident(s.split('.')[0]!)}.${ident(s.split('.')[1]!)}`, countB] },
  { id: 'commit-then-read', steps: (s, v) => ['COMMIT', `SELECT set_config(${literal(s)}, ${literal(v)}, false)`, countB] },
  { id: 'savepoint-switch', steps: (s, v) => ['SAVEPOINT agent', `SELECT set_config(${literal(s)}, ${literal(v)}, true)`, 'RELEASE SAVEPOINT agent', countB] },
  {
    id: 'rollback-to-savepoint',
    steps: (s, v) => [
      `SELECT set_config(${literal(s)}, ${literal(v)}, true)`,
      'SAVEPOINT agent',
      `SELECT set_config(${literal(s)}, '', true)`,
      'ROLLBACK TO SAVEPOINT agent',
      countB,
    ],
  },
];

export async function demo(options: { url: string | undefined }): Promise<DemoResult> {
  const suffix = randomBytes(4).toString('hex');
  const database = `tenantfence_demo_${suffix}`;
  const roles = {
    owner: `tf_demo_owner_${suffix}`,
    app: `tf_demo_app_${suffix}`,
    agent: `tf_demo_agent_${suffix}`,
    naive: `tf_demo_naive_${suffix}`,
  };
  const password = randomBytes(18).toString('base64url');
  const admin = await connect(options.url);
  const adminUrl = options.url ?? '';
  await admin.query(`CREATE DATABASE ${ident(database)}`);
  const pools: pg.Pool[] = [];
  let db: pg.Client | undefined;
  try {
    const dbUrl = urlForDatabase(adminUrl || defaultUrl(admin), database);
    db = await connect(dbUrl);
    const key = generateKey('demo');
    await init({ db, appRole: roles.app, agentRole: roles.agent, secret: `demo.${key.secret.toString('base64url')}` });
    await setUpTables(db, roles, password);
    // Rows go in before row level security is on: the admin is no superuser on managed PostgreSQL.
    await seed(db);
    await protectNaive(db);
    // The seed's table keeps its global BIGSERIAL key as the recipe wrote it; protect names it as advice.
    await protect({ allowGlobalKeys: true, db, tables: ['conversations'], appRole: roles.app, agentRole: roles.agent });

    const pool = (role: string) => {
      const p = new pg.Pool({ connectionString: urlForRole(dbUrl, role, password), max: 2 });
      p.on('error', () => undefined);
      pools.push(p);
      return p;
    };
    const appPool = pool(roles.app);
    const naivePool = pool(roles.naive);
    const checks = await runChecks(db, appPool, key, roles);
    const attacks: DemoAttack[] = [];
    for (const attack of ATTACKS) {
      attacks.push({
        id: attack.id,
        naive: await runNaive(naivePool, attack),
        fenced: await runFenced(appPool, key, attack),
      });
    }
    return { checks, attacks };
  } finally {
    await Promise.all(pools.map((p) => p.end().catch(() => undefined)));
    await db?.end().catch(() => undefined);
    await dropScratch(admin, database, Object.values(roles));
    await admin.end().catch(() => undefined);
  }
}

/** The `postgres` database on the server `client` is connected to, as the same user. */
export function defaultUrl(client: pg.Client): string {
  return `postgres://${encodeURIComponent(client.user ?? 'postgres')}@${client.host}:${client.port}/postgres`;
}

async function setUpTables(db: pg.Client, roles: Record<'owner' | 'app' | 'agent' | 'naive', string>, password: string): Promise<void> {
  await db.query(`CREATE ROLE ${ident(roles.owner)} NOLOGIN`);
  // Without superuser, handing a table to a role needs membership in it and its CREATE on the schema.
  await db.query(actAs(roles.owner).text);
  await db.query(`GRANT CREATE ON SCHEMA public TO ${ident(roles.owner)}`);
  for (const role of [roles.app, roles.agent]) await db.query(`ALTER ROLE ${ident(role)} PASSWORD ${literal(password)}`);
  await db.query(SEED_TABLE);
  await db.query(`ALTER TABLE conversations OWNER TO ${ident(roles.owner)}`);
  await installSeedRecipe(db, roles, password);
}

/**
 * The seed's recipe, verbatim: its role, its GUC policy, its index and grants, on a copy of the
 * seed's table in schema "naive" owned by `roles.owner` (which must exist). `tenantfence bench`
 * measures the same recipe.
 */
export async function installSeedRecipe(db: pg.Client, roles: { readonly owner: string; readonly naive: string }, password: string): Promise<void> {
  await db.query(`CREATE ROLE ${ident(roles.naive)} NOINHERIT LOGIN PASSWORD ${literal(password)}`);
  await db.query(`CREATE SCHEMA naive AUTHORIZATION ${ident(roles.owner)}`);
  await db.query(`${SEED_TABLE.replace('conversations', 'naive.conversations')}`);
  await db.query(`ALTER TABLE naive.conversations OWNER TO ${ident(roles.owner)}`);
  await db.query(`CREATE INDEX conversations_tenant_idx ON naive.conversations (tenant_id, created_at DESC)`);
  await db.query(`GRANT USAGE ON SCHEMA naive TO ${ident(roles.naive)}`);
  await db.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA naive TO ${ident(roles.naive)}`);
  await db.query(`GRANT USAGE ON ALL SEQUENCES IN SCHEMA naive TO ${ident(roles.naive)}`);
  await db.query(`ALTER ROLE ${ident(roles.naive)} SET search_path = naive`);
}

/** The seed recipe's policy on a GUC, verbatim (after the rows: the admin may be no superuser). */
export async function protectNaive(db: pg.Client): Promise<void> {
  await db.query(`ALTER TABLE naive.conversations ENABLE ROW LEVEL SECURITY`);
  await db.query(`ALTER TABLE naive.conversations FORCE ROW LEVEL SECURITY`);
  await db.query(`CREATE POLICY tenant_isolation ON naive.conversations
    USING (tenant_id = current_setting('app.tenant_id', true)::uuid)
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true)::uuid)`);
}

async function seed(db: pg.Client): Promise<void> {
  for (const table of ['public.conversations', 'naive.conversations']) {
    await db.query(
      `INSERT INTO ${table} (tenant_id, agent_id, transcript)
       SELECT t, gen_random_uuid(), 'transcript ' || t || ' #' || i
         FROM (VALUES ($1::uuid, 3), ($2::uuid, 2)) AS v(t, n), generate_series(1, n) AS i`,
      [TENANT_A, TENANT_B],
    );
  }
}

async function tenantRows(client: Pick<PgClientLike, 'query'>): Promise<Record<string, number>> {
  const { rows } = await client.query<{ tenant_id: string; n: number }>(
    'SELECT tenant_id, count(*)::int AS n FROM conversations GROUP BY tenant_id ORDER BY tenant_id',
  );
  return Object.fromEntries(rows.map((r) => [r.tenant_id, r.n]));
}

async function runChecks(
  db: pg.Client,
  appPool: pg.Pool,
  key: ReturnType<typeof generateKey>,
  roles: Record<'owner' | 'app', string>,
): Promise<DemoCheck[]> {
  const checks: DemoCheck[] = [];
  const add = (id: string, passed: boolean, detail: string) => checks.push({ id, passed, detail });

  const seenA = await withTenant(appPool, TENANT_A, tenantRows, { key });
  const seenB = await withTenant(appPool, TENANT_B, tenantRows, { key });
  add(
    'tenant-sees-only-own-rows',
    JSON.stringify(seenA) === JSON.stringify({ [TENANT_A]: 3 }) && JSON.stringify(seenB) === JSON.stringify({ [TENANT_B]: 2 }),
    `tenant A saw ${describe(seenA)}; tenant B saw ${describe(seenB)} (seeded: A 3 rows, B 2 rows)`,
  );

  const client = await appPool.connect();
  try {
    const none = await tenantRows(client);
    add('no-context-no-rows', Object.keys(none).length === 0, `without a context the app role saw ${describe(none)}`);
  } finally {
    client.release();
  }

  const before = await countByTenant(appPool, key, TENANT_B);
  let insertError = '';
  await withTenant(appPool, TENANT_A, (c) => c.query(`INSERT INTO conversations (tenant_id, agent_id) VALUES ($1, $2)`, [TENANT_B, randomUUID()]), { key }).catch(
    (e: { code?: string }) => (insertError = e.code ?? 'error'),
  );
  const after = await countByTenant(appPool, key, TENANT_B);
  add(
    'cross-tenant-insert-rejected',
    insertError === '42501' && before === after,
    `tenant A inserting a row for B: ${insertError === '42501' ? 'refused by WITH CHECK' : `not refused (${insertError || 'accepted'})`}; B's rows ${before} -> ${after}`,
  );

  await db.query('BEGIN');
  let ownerSaw: Record<string, number> = {};
  try {
    await db.query(`SET LOCAL ROLE ${ident(roles.owner)}`);
    ownerSaw = await tenantRows(db);
  } finally {
    await db.query('ROLLBACK');
  }
  add('owner-cannot-bypass', Object.keys(ownerSaw).length === 0, `the table owner (FORCE ROW LEVEL SECURITY) saw ${describe(ownerSaw)} without a context`);

  const { rows } = await db.query<{ rolsuper: boolean; rolbypassrls: boolean }>('SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = $1', [roles.app]);
  const r = rows[0];
  add('app-role-not-privileged', r !== undefined && !r.rolsuper && !r.rolbypassrls, `app role: superuser=${r?.rolsuper}, bypassrls=${r?.rolbypassrls}`);
  return checks;
}

/** Tenant B's rows as B sees them: the admin is no superuser, so it sees none without a context. */
async function countByTenant(appPool: pg.Pool, key: ReturnType<typeof generateKey>, tenant: string): Promise<number> {
  return withTenant(appPool, tenant, async (c) => {
    const { rows } = await c.query<{ n: number }>('SELECT count(*)::int AS n FROM public.conversations WHERE tenant_id = $1', [tenant]);
    return rows[0]!.n;
  }, { key });
}

function describe(seen: Record<string, number>): string {
  const parts = Object.entries(seen).map(([t, n]) => `${n} row(s) of ${t === TENANT_A ? 'A' : t === TENANT_B ? 'B' : 'another tenant'}`);
  return parts.length === 0 ? 'no rows' : parts.join(', ');
}

/** Runs the attack's statements one by one; leaked iff the last one returned B's rows. */
async function attackRows(client: Pick<PgClientLike, 'query'>, steps: string[]): Promise<number> {
  let last: { rows: Array<{ b_rows?: number }> } | undefined;
  for (const step of steps) last = await client.query<{ b_rows?: number }>(step);
  return last?.rows[0]?.b_rows ?? 0;
}

/**
 * An attack that errors has not leaked; setup that errors (BEGIN, the context) is a failure of the
 * demo itself and propagates instead of being counted as "blocked".
 */
async function runNaive(pool: pg.Pool, attack: Attack): Promise<'leaked' | 'blocked'> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    // The seed's middleware, verbatim: the tenant id spliced into SET LOCAL.
    await client.query(`SET LOCAL app.tenant_id = '${TENANT_A}'`);
    const seen = await attackRows(client, attack.steps('app.tenant_id', TENANT_B)).catch(() => 0);
    return seen > 0 ? 'leaked' : 'blocked';
  } finally {
    await client.query('ROLLBACK').catch(() => undefined);
    client.release(true);
  }
}

async function runFenced(pool: pg.Pool, key: ReturnType<typeof generateKey>, attack: Attack): Promise<'leaked' | 'blocked'> {
  let seen = 0;
  let attackFailed = false;
  // The strongest forgery the agent can make: its own valid token with B's id swapped in.
  const own = signContext(key, TENANT_A);
  const forged = own.replace(`.${TENANT_A}.`, `.${TENANT_B}.`);
  await withTenant(pool, TENANT_A, async (client) => {
    seen = await attackRows(client, attack.steps(CONTEXT_SETTING, forged)).catch(() => {
      attackFailed = true;
      return 0;
    });
  }, { key }).catch((error: unknown) => {
    // A failed attack leaves the transaction aborted, so withTenant reports the rollback; an attack
    // that ended the transaction is reported as a broken fence. Either way what it saw is counted.
    if (!attackFailed && (error as { code?: string }).code !== ErrorCodes.FENCE_BROKEN) throw error;
  });
  return seen > 0 ? 'leaked' : 'blocked';
}

/**
 * Drops a scratch database and its roles (demo's, bench's). A non-superuser admin cannot terminate
 * sessions of roles it is not a member of, so WITH (FORCE) fails while a pooled connection is
 * still closing (seen under load): it is retried for up to ten seconds instead of leaving the
 * database and roles behind.
 */
export async function dropScratch(admin: Pick<pg.Client, 'query'>, database: string, roles: readonly string[]): Promise<void> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const dropped = await admin.query(`DROP DATABASE IF EXISTS ${ident(database)} WITH (FORCE)`).then(() => true, () => false);
    if (dropped) break;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  for (const role of roles) await admin.query(`DROP ROLE IF EXISTS ${ident(role)}`).catch(() => undefined);
}

export function formatDemo(result: DemoResult, color: boolean): string {
  const paint = (ok: boolean, text: string) => (color ? `\x1b[${ok ? 32 : 31}m${text}\x1b[0m` : text);
  const lines = ['Isolation checks (tenantfence)', ''];
  for (const c of result.checks) lines.push(`  ${paint(c.passed, c.passed ? 'PASS' : 'FAIL')}  ${c.id.padEnd(30)} ${c.detail}`);
  lines.push('', 'Agent attacks from inside tenant A\'s transaction, reading tenant B\'s rows', '');
  const w = Math.max(...result.attacks.map((a) => a.id.length), 6);
  lines.push(`  ${'attack'.padEnd(w)}  ${'seed recipe'.padEnd(11)}  tenantfence`);
  lines.push(`  ${'-'.repeat(w)}  ${'-'.repeat(11)}  ${'-'.repeat(11)}`);
  for (const a of result.attacks) {
    lines.push(`  ${a.id.padEnd(w)}  ${paint(a.naive === 'blocked', a.naive.padEnd(11))}  ${paint(a.fenced === 'blocked', a.fenced)}`);
  }
  const leaks = result.attacks.filter((a) => a.naive === 'leaked').length;
  const fencedLeaks = result.attacks.filter((a) => a.fenced === 'leaked').length;
  const failed = result.checks.filter((c) => !c.passed).length;
  lines.push('', `${result.checks.length - failed}/${result.checks.length} checks passed; the seed recipe leaked ${leaks}/${result.attacks.length} attacks, tenantfence ${fencedLeaks}.`, '');
  return lines.join('\n');
}
