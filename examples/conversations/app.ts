/**
 * The seed's application: an HTTP API over the `conversations` table, one tenant per JWT.
 *
 *   GET  /conversations          the tenant's latest conversations
 *   POST /conversations          {"transcript": "..."} → the new row
 *   GET  /conversations/:id      one conversation, 404 when the tenant cannot see it
 *   POST /agent/query            {"sql": "...", "params": [...]}: SQL written by an LLM, through the
 *                                firewall, as the agent role, in the tenant's fence
 *
 * Nothing here filters by tenant: `requireTenant` turns the JWT into the request's tenant, the
 * Drizzle binding fences every query with it, and PostgreSQL's policies do the rest. In your own
 * app the imports are `tenantfence/hono`, `tenantfence/drizzle` and `tenantfence/gateway`.
 */
import { Hono } from 'hono';
import { desc, eq } from 'drizzle-orm';
import type { NodePgDatabase } from 'drizzle-orm/node-postgres';
import { bigserial, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import { requireTenant, type TenantEnv } from '../../src/http/hono.ts';
import { withTenant } from '../../src/adapters/drizzle.ts';
import type { GatewayService } from '../../src/gateway/index.ts';
import type { RequestAuthOptions } from '../../src/auth/index.ts';
import type { FenceOptions } from '../../src/context/fence.ts';
import { getTenant } from '../../src/context/storage.ts';

export const conversations = pgTable('conversations', {
  id: bigserial('id', { mode: 'number' }).primaryKey(),
  tenantId: uuid('tenant_id').notNull(),
  agentId: uuid('agent_id').notNull(),
  transcript: text('transcript'),
  createdAt: timestamp('created_at', { withTimezone: true }).defaultNow(),
});

export interface AppOptions {
  /** Drizzle over a node-postgres pool that logs in as the application role. */
  readonly db: NodePgDatabase;
  /** The agent gateway, used in-process. */
  readonly agent: GatewayService;
  readonly auth: RequestAuthOptions;
  /** The fence's options (the signing key; default TENANTFENCE_SECRET). */
  readonly fence?: FenceOptions;
}

export function createApp({ db, agent, auth, fence }: AppOptions): Hono<TenantEnv> {
  const app = new Hono<TenantEnv>();
  app.use('*', requireTenant(auth));

  app.get('/conversations', async (c) =>
    c.json(await withTenant(db, (tx) => tx.select().from(conversations).orderBy(desc(conversations.createdAt), desc(conversations.id)).limit(50), fence)),
  );

  app.post('/conversations', async (c) => {
    const body = await c.req.json().catch(() => null);
    if (!body || typeof body.transcript !== 'string' || body.transcript.length > 10_000) {
      return c.json({ error: { code: 'TF_BAD_REQUEST', message: 'Send {"transcript": "..."} (at most 10,000 characters).' } }, 400);
    }
    const [row] = await withTenant(db, (tx) =>
      tx.insert(conversations).values({ tenantId: getTenant(), agentId: crypto.randomUUID(), transcript: body.transcript }).returning(), fence);
    return c.json(row, 201);
  });

  app.get('/conversations/:id', async (c) => {
    const id = Number(c.req.param('id'));
    if (!Number.isSafeInteger(id)) return c.json({ error: { code: 'TF_NOT_FOUND', message: 'No such conversation.' } }, 404);
    const [row] = await withTenant(db, (tx) => tx.select().from(conversations).where(eq(conversations.id, id)), fence);
    return row ? c.json(row) : c.json({ error: { code: 'TF_NOT_FOUND', message: 'No such conversation.' } }, 404);
  });

  app.post('/agent/query', async (c) => {
    const reply = await agent.query(c.get('tenantfence'), await c.req.json().catch(() => null));
    return c.json(reply.body, reply.status as 200);
  });

  return app;
}
