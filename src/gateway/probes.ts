/**
 * The unauthenticated probes both doors serve (REST in http.ts, MCP over HTTP in mcp.ts):
 *   GET /healthz   200 when the agent role can reach the database, else 503
 *   GET /metrics   Prometheus text
 * Bind the gateway to a private interface: neither asks for credentials.
 */
import type { Env, Hono } from 'hono';
import type { GatewayService } from './service.ts';

export function mountProbes<E extends Env>(app: Hono<E>, service: GatewayService): void {
  app.get('/healthz', async (c) => {
    const ok = await service.healthy();
    return c.json({ status: ok ? 'ok' : 'unavailable' }, ok ? 200 : 503);
  });
  app.get('/metrics', (c) => c.text(service.metrics.render(), 200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' }));
}
