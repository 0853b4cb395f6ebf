/**
 * The probes both doors serve (REST in http.ts, MCP over HTTP in mcp.ts):
 *   GET /healthz   200 when the agent role can reach the database, else 503 (no credentials)
 *   GET /metrics   Prometheus text, only with `metricsToken` set and sent as a bearer token
 * /metrics counts every tenant's traffic, refusals and pool use; the agents that call this
 * listener are tenants, so without a token of its own the route does not exist here (404).
 */
import { timingSafeEqual, createHash } from 'node:crypto';
import type { Env, Hono } from 'hono';
import type { GatewayService } from './service.ts';

export function mountProbes<E extends Env>(app: Hono<E>, service: GatewayService): void {
  app.get('/healthz', async (c) => {
    const ok = await service.healthy();
    return c.json({ status: ok ? 'ok' : 'unavailable' }, ok ? 200 : 503);
  });
  const token = service.options.metricsToken;
  if (token === undefined) return;
  const expected = digest(`Bearer ${token}`);
  app.get('/metrics', (c) => {
    if (!timingSafeEqual(digest(c.req.header('Authorization') ?? ''), expected)) {
      return c.text('metrics need the metrics bearer token\n', 401, { 'WWW-Authenticate': 'Bearer' });
    }
    return c.text(service.metrics.render(), 200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' });
  });
}

/** Equal-length values for timingSafeEqual, whatever was sent. */
function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}
