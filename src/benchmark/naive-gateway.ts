/**
 * The baseline gateway: what a team writes in thirty lines to let an agent query Postgres.
 * No auth, no firewall, no limits, no audit; a read-only transaction is its only guard, and the
 * tenant filter is whatever SQL the caller sends. Kept deliberately plain: it is the yardstick.
 */
import { Hono } from 'hono';
import type pg from 'pg';

export function naiveGateway(pool: pg.Pool): Hono {
  const app = new Hono();
  app.post('/query', async (c) => {
    const { sql, params } = await c.req.json<{ sql: string; params?: unknown[] }>();
    const client = await pool.connect();
    let failed: Error | undefined;
    try {
      await client.query('BEGIN READ ONLY');
      const { rows } = await client.query(sql, params);
      await client.query('ROLLBACK');
      return c.json({ rows });
    } catch (error) {
      failed = error as Error;
      return c.json({ error: failed.message }, 400);
    } finally {
      client.release(failed);
    }
  });
  return app;
}
