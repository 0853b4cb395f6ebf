/**
 * `npm run example`: the conversations app on an embedded PostgreSQL, from nothing. It installs
 * tenantfence, creates and protects the seed's table, seeds two tenants, prints a JWT for each and
 * the curl lines of the README's walkthrough, and serves on http://127.0.0.1:3000 (PORT) until
 * Ctrl-C, when the embedded server is stopped and its files removed.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { SignJWT } from 'jose';
import { serve } from '@hono/node-server';
import { drizzle } from 'drizzle-orm/node-postgres';
import { startEmbedded } from '../../src/embedded/index.ts';
import { urlForRole } from '../../src/embedded/database.ts';
import { init } from '../../src/cli/commands/init.ts';
import { protect } from '../../src/cli/commands/protect.ts';
import { SEED_TABLE } from '../../src/cli/commands/demo.ts';
import { formatSecret, generateKey } from '../../src/context/token.ts';
import { ident, literal } from '../../src/sql/quote.ts';
import { GatewayService } from '../../src/gateway/index.ts';
import { createApp } from './app.ts';

export const TENANTS = { acme: '11111111-1111-1111-1111-111111111111', globex: '22222222-2222-2222-2222-222222222222' };

/** tenantfence init, the seed's table owned by a NOLOGIN role, protect, and a few rows per tenant. */
export async function setUpDatabase(admin: pg.Client, roles: { app: string; agent: string; owner: string }, password: string, secret: string): Promise<void> {
  await init({ db: admin, appRole: roles.app, agentRole: roles.agent, secret });
  for (const r of [roles.app, roles.agent]) await admin.query(`ALTER ROLE ${ident(r)} PASSWORD ${literal(password)}`);
  await admin.query(`CREATE ROLE ${ident(roles.owner)} NOLOGIN`);
  await admin.query(SEED_TABLE);
  await admin.query(`ALTER TABLE conversations OWNER TO ${ident(roles.owner)}`);
  // The seed's table keeps its global BIGSERIAL key as the recipe wrote it; protect names it as advice.
  await protect({ allowGlobalKeys: true, db: admin, tables: ['conversations'], appRole: roles.app, agentRole: roles.agent });
  await admin.query(
    `INSERT INTO conversations (tenant_id, agent_id, transcript)
     VALUES ($1, gen_random_uuid(), 'acme: refund request for order 1001'), ($1, gen_random_uuid(), 'acme: password reset'),
            ($2, gen_random_uuid(), 'globex: invoice dispute, card ending 4242')`,
    [TENANTS.acme, TENANTS.globex],
  );
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const server = await startEmbedded();
  const admin = new pg.Client(server.url);
  await admin.connect();
  const password = randomBytes(18).toString('base64url');
  const key = generateKey('example');
  const roles = { app: 'tenantfence_app', agent: 'tenantfence_agent', owner: 'conversations_owner' };
  await setUpDatabase(admin, roles, password, formatSecret(key));
  await admin.end();

  const jwtSecret = randomBytes(32).toString('base64url');
  const pool = new pg.Pool({ connectionString: urlForRole(server.url, roles.app, password), pipeline: true } as pg.PoolConfig);
  const agent = new GatewayService({ key, auth: { jwtSecret }, agentDatabaseUrl: urlForRole(server.url, roles.agent, password) });
  await agent.start();
  const app = createApp({ db: drizzle({ client: pool }), agent, auth: { jwtSecret }, fence: { key } });
  const port = Number(process.env.PORT ?? 3000);
  const http = serve({ fetch: app.fetch, port, hostname: '127.0.0.1' });

  const token = (tenant: string) =>
    new SignJWT({ tenant_id: tenant, sub: 'walkthrough' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('2h').sign(new TextEncoder().encode(jwtSecret));
  console.log(`conversations example on http://127.0.0.1:${port} (embedded PostgreSQL; Ctrl-C stops both)\n`);
  console.log(`export ACME=${await token(TENANTS.acme)}`);
  console.log(`export GLOBEX=${await token(TENANTS.globex)}`);
  console.log(`export API=http://127.0.0.1:${port}\n`);

  const stop = async () => {
    http.close();
    await pool.end();
    await agent.close();
    await server.stop();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
