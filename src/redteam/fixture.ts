/**
 * The red-team fixture (issue 10, item 4): a scratch database with tenantfence installed, the seed's
 * `conversations` table protected (agent write allowed, so write-mode attacks have something to
 * aim at), tenants A and B, and B's rows holding random marker strings. Everything an attack must
 * not do is judged against B's data: no marker in any output, error or notice (unread), the same
 * checksum of B's rows before and after (unchanged). Also: a table nobody protected (`notes`, B's
 * marker in it) and a view in `public` named like pg_stat_statements, both readable by the agent
 * role, so the firewall's allowlist is what stands between them and the agent.
 *
 * Used by `tenantfence redteam`, the fuzzer (fuzz.ts) and their tests. Roles and the database get a
 * random suffix, so several fixtures can live on one server; `drop()` removes all of it.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { formatSecret, generateKey, type SigningKey } from '../context/token.ts';
import { connect, urlForDatabase, urlForRole } from '../embedded/database.ts';
import { ident, literal } from '../sql/quote.ts';
import { init } from '../cli/commands/init.ts';
import { protect } from '../cli/commands/protect.ts';
import { SEED_TABLE } from '../cli/commands/demo.ts';

export const TENANT_A = 'aaaaaaaa-0000-4000-8000-00000000000a';
export const TENANT_B = 'bbbbbbbb-0000-4000-8000-00000000000b';

export interface Fixture {
  readonly database: string;
  /** Superuser (or admin) connection string to the fixture database. */
  readonly url: string;
  readonly key: SigningKey;
  readonly roles: { readonly app: string; readonly agent: string; readonly owner: string };
  readonly password: string;
  /** Strings only tenant B's rows hold; one in any output is a leak. */
  readonly markers: readonly string[];
  /** A key of B's (an id) and one nobody has: oracle cases compare the two. */
  readonly bExistingId: string;
  readonly missingId: string;
  /** A pool logging in as `role` (the fixture ends it in `drop()`). */
  pool(role: string, options?: pg.PoolConfig): pg.Pool;
  /** A digest of every row of tenant B, as the admin sees them. */
  checksumB(): Promise<string>;
  drop(): Promise<void>;
}

/**
 * `adminUrl`: a role that can create databases and roles (a superuser, or a CREATEROLE database
 * owner on managed Postgres); undefined means libpq's PG* variables.
 */
export async function createFixture(adminUrl: string | undefined): Promise<Fixture> {
  const suffix = randomBytes(4).toString('hex');
  const database = `tenantfence_redteam_${suffix}`;
  const roles = { app: `tf_rt_app_${suffix}`, agent: `tf_rt_agent_${suffix}`, owner: `tf_rt_owner_${suffix}` };
  const password = randomBytes(18).toString('base64url');
  const server = await connect(adminUrl);
  const base = adminUrl ?? `postgres://${encodeURIComponent(server.user ?? 'postgres')}@${server.host}:${server.port}/postgres`;
  await server.query(`CREATE DATABASE ${ident(database)}`);
  const url = urlForDatabase(base, database);
  const pools: pg.Pool[] = [];
  let admin: pg.Client | undefined;
  const drop = async () => {
    await Promise.all(pools.map((p) => p.end().catch(() => undefined)));
    await admin?.end().catch(() => undefined);
    await server.query(`DROP DATABASE IF EXISTS ${ident(database)} WITH (FORCE)`).catch(() => undefined);
    for (const role of Object.values(roles)) await server.query(`DROP ROLE IF EXISTS ${ident(role)}`).catch(() => undefined);
    await server.end().catch(() => undefined);
  };
  try {
    admin = await connect(url);
    const key = generateKey('rt');
    await init({ db: admin, appRole: roles.app, agentRole: roles.agent, secret: formatSecret(key) });
    for (const role of [roles.app, roles.agent]) await admin.query(`ALTER ROLE ${ident(role)} PASSWORD ${literal(password)}`);
    await admin.query(`CREATE ROLE ${ident(roles.owner)} NOLOGIN`);
    await admin.query(SEED_TABLE);
    await admin.query(`ALTER TABLE conversations OWNER TO ${ident(roles.owner)}`);
    // The seed's table keeps its global BIGSERIAL key as the recipe wrote it; protect names it as advice.
    await protect({ allowGlobalKeys: true, db: admin, tables: ['conversations'], appRole: roles.app, agentRole: roles.agent, agentWrite: true });
    const markers = [0, 1, 2].map(() => `zqB${randomBytes(8).toString('hex')}`);
    await admin.query(
      `INSERT INTO conversations (tenant_id, agent_id, transcript)
       SELECT $1::uuid, gen_random_uuid(), 'A note ' || i FROM generate_series(1, 3) AS i`,
      [TENANT_A],
    );
    await admin.query(
      `INSERT INTO conversations (tenant_id, agent_id, transcript) SELECT $1::uuid, gen_random_uuid(), m FROM unnest($2::text[]) AS m`,
      [TENANT_B, markers],
    );
    // Traps the firewall's allowlist must keep the agent out of (the database would not).
    await admin.query(`CREATE TABLE public.notes (tenant_id uuid, body text)`);
    await admin.query(`INSERT INTO public.notes VALUES ($1, $2)`, [TENANT_B, `note ${markers[0]}`]);
    await admin.query(`GRANT SELECT ON public.notes TO ${ident(roles.agent)}`);
    await admin.query(`CREATE VIEW public.pg_stat_statements AS SELECT query FROM pg_catalog.pg_stat_activity`);
    await admin.query(`GRANT SELECT ON public.pg_stat_statements TO PUBLIC`);
    const { rows } = await admin.query<{ id: string }>('SELECT min(id)::text AS id FROM conversations WHERE tenant_id = $1', [TENANT_B]);
    const fixture: Fixture = {
      database,
      url,
      key,
      roles,
      password,
      markers,
      bExistingId: rows[0]!.id,
      missingId: '987654321',
      pool(role, options = {}) {
        const p = new pg.Pool({ connectionString: urlForRole(url, role, password), max: 4, ...options });
        p.on('error', () => undefined);
        pools.push(p);
        return p;
      },
      async checksumB() {
        const { rows: r } = await admin!.query<{ sum: string | null }>(
          `SELECT md5(string_agg(c::text, '|' ORDER BY c.id)) AS sum FROM conversations c WHERE tenant_id = $1`,
          [TENANT_B],
        );
        const notes = await admin!.query<{ sum: string | null }>(`SELECT md5(string_agg(n::text, '|' ORDER BY n.body)) AS sum FROM public.notes n`);
        return `${r[0]!.sum}:${notes.rows[0]!.sum}`;
      },
      drop,
    };
    return fixture;
  } catch (error) {
    await drop();
    throw error;
  }
}

/** The markers of `fixture` that `text` contains. */
export function leakedMarkers(fixture: Pick<Fixture, 'markers'>, text: string): string[] {
  return fixture.markers.filter((m) => text.includes(m));
}
