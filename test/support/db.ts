/**
 * Test databases: each test gets its own database and its own roles (roles are cluster-wide), so
 * test files run in parallel. Isolation is always checked as the roles production uses (never
 * the superuser, never the table owner).
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { urlForDatabase, urlForRole } from '../../src/embedded/database.ts';
import { ident, literal } from '../../src/sql/quote.ts';
import { init } from '../../src/cli/commands/init.ts';
import { protect } from '../../src/cli/commands/protect.ts';
import { SEED_TABLE } from '../../src/cli/commands/demo.ts';
import { formatSecret, generateKey, type SigningKey } from '../../src/context/token.ts';

export const TENANT_A = '11111111-1111-1111-1111-111111111111';
export const TENANT_B = '22222222-2222-2222-2222-222222222222';

export function serverUrl(): string {
  const url = process.env.TEST_DATABASE_URL ?? process.env.DATABASE_URL;
  if (!url) throw new Error('run the tests with `npm test` (it provides a database) or set TEST_DATABASE_URL');
  return url;
}

export interface TestDatabase {
  readonly name: string;
  readonly url: string;
  /** A superuser connection to the test database (setup and assertions only). */
  readonly admin: pg.Client;
  /** Unique role names for this test. */
  readonly roles: { app: string; agent: string; owner: string };
  readonly password: string;
  pool(role: string, options?: pg.PoolConfig): pg.Pool;
  /** Creates a role that this database will drop at the end. */
  role(prefix: string): string;
  drop(): Promise<void>;
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const suffix = randomBytes(5).toString('hex');
  const name = `tf_test_${suffix}`;
  const server = new pg.Client(serverUrl());
  await server.connect();
  await server.query(`CREATE DATABASE ${ident(name)}`);
  const url = urlForDatabase(serverUrl(), name);
  const admin = new pg.Client(url);
  await admin.connect();
  const password = randomBytes(12).toString('hex');
  const extraRoles: string[] = [];
  const roles = { app: `tf_app_${suffix}`, agent: `tf_agent_${suffix}`, owner: `tf_owner_${suffix}` };
  const pools: pg.Pool[] = [];
  return {
    name,
    url,
    admin,
    roles,
    password,
    role(prefix) {
      const r = `${prefix}_${suffix}`;
      extraRoles.push(r);
      return r;
    },
    pool(role, options = {}) {
      const p = new pg.Pool({ connectionString: urlForRole(url, role, password), max: 4, ...options });
      p.on('error', () => undefined);
      pools.push(p);
      return p;
    },
    async drop() {
      await Promise.all(pools.map((p) => p.end().catch(() => undefined)));
      await admin.end().catch(() => undefined);
      await server.query(`DROP DATABASE IF EXISTS ${ident(name)} WITH (FORCE)`);
      for (const r of [...Object.values(roles), ...extraRoles]) {
        await server.query(`DROP ROLE IF EXISTS ${ident(r)}`).catch(() => undefined);
      }
      await server.end();
    },
  };
}

export interface Fenced {
  readonly key: SigningKey;
}

/**
 * tenantfence init with a fresh key, passwords on the app and agent roles (so they can connect to
 * an embedded server, scram, as well as a trust-auth one) and the NOLOGIN table owner role.
 */
export async function initFence(db: TestDatabase): Promise<Fenced> {
  const key = generateKey('t1');
  await init({ db: db.admin, appRole: db.roles.app, agentRole: db.roles.agent, secret: formatSecret(key) });
  for (const r of [db.roles.app, db.roles.agent]) await db.admin.query(`ALTER ROLE ${ident(r)} PASSWORD ${literal(db.password)}`);
  await db.admin.query(`CREATE ROLE ${ident(db.roles.owner)} NOLOGIN`);
  return { key };
}

/**
 * initFence + the seed's `conversations` table owned by a separate owner role, protected,
 * with rows for tenants A (3) and B (2).
 */
export async function installFence(db: TestDatabase, options: { agentWrite?: boolean } = {}): Promise<Fenced> {
  const { key } = await initFence(db);
  await db.admin.query(SEED_TABLE);
  await db.admin.query(`ALTER TABLE conversations OWNER TO ${ident(db.roles.owner)}`);
  await protect({ allowGlobalKeys: true, db: db.admin, tables: ['conversations'], appRole: db.roles.app, agentRole: db.roles.agent, agentWrite: options.agentWrite ?? false });
  await db.admin.query(
    `INSERT INTO conversations (tenant_id, agent_id, transcript)
     SELECT t, gen_random_uuid(), 'secret of ' || t || ' #' || i
       FROM (VALUES ($1::uuid, 3), ($2::uuid, 2)) AS v(t, n), generate_series(1, n) AS i`,
    [TENANT_A, TENANT_B],
  );
  return { key };
}

/** Tenant B's rows as the superuser sees them: the ground truth attacks are checked against. */
export async function rowsOf(db: TestDatabase, tenant: string): Promise<Array<{ id: string; transcript: string }>> {
  const { rows } = await db.admin.query('SELECT id::text, transcript FROM conversations WHERE tenant_id = $1 ORDER BY id', [tenant]);
  return rows;
}
