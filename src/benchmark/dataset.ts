/**
 * The benchmark's scratch database: the seed's `conversations` table three times, with the same
 * rows in the same physical order and the same indexes, one per way of isolating tenants:
 *   public.conversations  tenantfence (`init` + `protect`), read as the app and agent roles;
 *   naive.conversations   the seed's recipe: a policy on current_setting('app.tenant_id');
 *   plain.conversations   no RLS at all, filtered by the application's WHERE (the baseline).
 * Each is read by its own login role, never a superuser, owner or BYPASSRLS role (test/support/db.ts
 * does the same). Tenants are skewed (Zipf, exponent 1): tenant k holds a share proportional to 1/k,
 * and rows of all tenants are interleaved in the heap as real traffic leaves them.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { connect, urlForDatabase, urlForRole } from '../embedded/database.ts';
import { formatSecret, generateKey, type SigningKey } from '../context/token.ts';
import { ident, literal } from '../sql/quote.ts';
import { init } from '../cli/commands/init.ts';
import { protect } from '../cli/commands/protect.ts';
import { defaultUrl, dropScratch, installSeedRecipe, protectNaive, SEED_TABLE } from '../cli/commands/demo.ts';
import { actAs } from '../sql/membership.ts';

export type Progress = (phase: string, done: number, total: number) => void;

export interface BenchRoles {
  readonly app: string;
  readonly agent: string;
  readonly owner: string;
  readonly naive: string;
  readonly plain: string;
}

/** One request's arguments: a row that exists, and its tenant. */
export interface Pick {
  readonly id: string;
  readonly tenant: string;
}

export interface Dataset {
  readonly database: string;
  readonly url: string;
  readonly admin: pg.Client;
  readonly roles: BenchRoles;
  readonly password: string;
  readonly key: SigningKey;
  readonly serverVersion: string;
  readonly tenantRows: { readonly largest: number; readonly smallest: number };
  /** Requests take picks in this order (the same in every cell), tenants weighted by their rows. */
  readonly picks: readonly Pick[];
  pool(role: string, applicationName: string, options?: pg.PoolConfig): pg.Pool;
  drop(): Promise<void>;
}

export const ZIPF_EXPONENT = 1;
const BATCH = 20_000;
const PICKS = 1024;

export function tenantId(k: number): string {
  return `00000000-0000-4000-8000-${String(k).padStart(12, '0')}`;
}

export async function createDataset(
  adminUrl: string | undefined,
  size: { rows: number; tenants: number },
  progress: Progress = () => undefined,
): Promise<Dataset> {
  const suffix = randomBytes(4).toString('hex');
  const database = `tenantfence_bench_${suffix}`;
  const roles: BenchRoles = {
    app: `tf_bench_app_${suffix}`,
    agent: `tf_bench_agent_${suffix}`,
    owner: `tf_bench_owner_${suffix}`,
    naive: `tf_bench_naive_${suffix}`,
    plain: `tf_bench_plain_${suffix}`,
  };
  const password = randomBytes(18).toString('base64url');
  const server = await connect(adminUrl);
  const pools: pg.Pool[] = [];
  let admin: pg.Client | undefined;
  const drop = async () => {
    await Promise.all(pools.map((p) => p.end().catch(() => undefined)));
    await admin?.end().catch(() => undefined);
    await dropScratch(server, database, Object.values(roles));
    await server.end().catch(() => undefined);
  };
  try {
    await server.query(`CREATE DATABASE ${ident(database)}`);
    const url = urlForDatabase(adminUrl ?? defaultUrl(server), database);
    admin = await connect(url);
    const db = admin;
    const key = generateKey('bench');
    await init({ db, appRole: roles.app, agentRole: roles.agent, secret: formatSecret(key) });
    for (const role of [roles.app, roles.agent]) await db.query(`ALTER ROLE ${ident(role)} PASSWORD ${literal(password)}`);
    await db.query(`CREATE ROLE ${ident(roles.owner)} NOLOGIN`);
    // Without superuser, handing a table to a role needs membership in it and its CREATE on the schema.
    await db.query(actAs(roles.owner).text);
    await db.query(`GRANT CREATE ON SCHEMA public TO ${ident(roles.owner)}`);
    await db.query(`CREATE ROLE ${ident(roles.plain)} LOGIN PASSWORD ${literal(password)}`);
    await installSeedRecipe(db, { owner: roles.owner, naive: roles.naive }, password);
    await db.query(SEED_TABLE);
    await load(db, size, progress);
    await db.query(`CREATE SCHEMA plain AUTHORIZATION ${ident(roles.owner)}`);
    await db.query(SEED_TABLE.replace('conversations', 'plain.conversations'));
    for (const schema of ['naive', 'plain']) {
      await db.query(`INSERT INTO ${schema}.conversations SELECT * FROM public.conversations ORDER BY id`);
      await db.query(`SELECT setval(pg_get_serial_sequence('${schema}.conversations', 'id'), (SELECT max(id) FROM ${schema}.conversations))`);
      progress('copy', schema === 'naive' ? 1 : 2, 2);
    }
    for (const schema of ['public', 'plain']) {
      // The recipe's index (naive.conversations has it from installSeedRecipe), on every copy.
      await db.query(`CREATE INDEX IF NOT EXISTS conversations_tenant_idx ON ${schema}.conversations (tenant_id, created_at DESC)`);
      await db.query(`ALTER TABLE ${schema}.conversations OWNER TO ${ident(roles.owner)}`);
    }
    await db.query(`GRANT USAGE ON SCHEMA plain TO ${ident(roles.plain)}`);
    await db.query(`GRANT SELECT, INSERT ON plain.conversations TO ${ident(roles.plain)}`);
    await db.query(`GRANT USAGE ON ALL SEQUENCES IN SCHEMA plain TO ${ident(roles.plain)}`);
    // Every variant sends the same unqualified SQL; the role decides which copy it names.
    await db.query(`ALTER ROLE ${ident(roles.plain)} IN DATABASE ${ident(database)} SET search_path = plain`);
    // Row level security goes on after the rows are in: the admin may be no superuser.
    await protectNaive(db);
    // The seed's table keeps its global BIGSERIAL key as the recipe wrote it; protect names it as advice.
    await protect({ allowGlobalKeys: true, db, tables: ['conversations'], appRole: roles.app, agentRole: roles.agent });
    await db.query('VACUUM ANALYZE');

    // From the copy without RLS: an admin that is no superuser sees no rows of the other two.
    const { rows: shares } = await db.query<{ largest: number; smallest: number }>(
      `SELECT max(n)::int AS largest, min(n)::int AS smallest FROM (SELECT count(*) AS n FROM plain.conversations GROUP BY tenant_id) s`,
    );
    const step = Math.max(1, Math.floor(size.rows / PICKS));
    const { rows: sampled } = await db.query<Pick>(
      `SELECT id::text AS id, tenant_id::text AS tenant FROM plain.conversations WHERE id % $1 = 0 ORDER BY id LIMIT $2`,
      [step, PICKS],
    );
    const version = (await db.query<{ v: string }>('SELECT current_setting($1) AS v', ['server_version'])).rows[0]!.v;
    return {
      database,
      url,
      admin: db,
      roles,
      password,
      key,
      serverVersion: version,
      tenantRows: shares[0]!,
      picks: shuffle(sampled),
      pool(role, applicationName, options = {}) {
        // idleTimeoutMillis 0: a connection idle between rounds stays open, so no cell pays a login.
        const p = new pg.Pool({ connectionString: urlForRole(url, role, password), application_name: applicationName, idleTimeoutMillis: 0, ...options } as pg.PoolConfig);
        p.on('error', () => undefined);
        pools.push(p);
        return p;
      },
      drop,
    };
  } catch (error) {
    await drop();
    throw error;
  }
}

/**
 * Rows in batches (a progress step each). Row i goes to the tenant whose cumulative Zipf share
 * covers a well-spread hash of i, so every tenant's rows are scattered across the heap.
 */
async function load(db: pg.Client, size: { rows: number; tenants: number }, progress: Progress): Promise<void> {
  const weights = Array.from({ length: size.tenants }, (_, k) => 1 / (k + 1) ** ZIPF_EXPONENT);
  const total = weights.reduce((a, b) => a + b, 0);
  const bounds: number[] = [];
  let cumulative = 0;
  for (const w of weights) {
    bounds.push(cumulative / total);
    cumulative += w;
  }
  const tenants = weights.map((_, k) => tenantId(k + 1));
  progress('load', 0, size.rows);
  for (let from = 1; from <= size.rows; from += BATCH) {
    const to = Math.min(size.rows, from + BATCH - 1);
    await db.query(
      `INSERT INTO public.conversations (id, tenant_id, agent_id, transcript, created_at)
       SELECT i, ($1::uuid[])[width_bucket(((i * 2654435761) % 4294967296)::float8 / 4294967296, $2::float8[])],
              gen_random_uuid(), 'transcript #' || i || ': ' || repeat(md5(i::text), 4), now() - ($5 - i) * interval '1 second'
         FROM generate_series($3::bigint, $4::bigint) AS i`,
      [tenants, bounds, from, to, size.rows],
    );
    progress('load', to, size.rows);
  }
  await db.query(`SELECT setval(pg_get_serial_sequence('public.conversations', 'id'), $1)`, [size.rows]);
}

/** A fixed shuffle (mulberry32), so consecutive requests hit different tenants, run after run. */
function shuffle<T>(items: readonly T[]): T[] {
  const out = [...items];
  let seed = 0x7e4a17;
  const random = () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
