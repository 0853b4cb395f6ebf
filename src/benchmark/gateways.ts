/**
 * The gateway comparison: `tenantfence serve` as shipped (firewall, JWT, per-tenant limits and the
 * audit record all on) against the naive gateway someone writes in thirty lines (naive-gateway.ts),
 * both in this process on 127.0.0.1, both sent a tenant's latest 20 rows over keep-alive HTTP/1.1.
 * The naive one gets the tenant in the request and the filter in its SQL, as it has nothing else.
 */
import { randomBytes } from 'node:crypto';
import { Agent, request } from 'node:http';
import { SignJWT } from 'jose';
import { urlForRole } from '../embedded/database.ts';
import { formatSecret } from '../context/token.ts';
import { serve, listenOn, type RunningServer } from '../cli/commands/serve.ts';
import { naiveGateway } from './naive-gateway.ts';
import { SHAPES, type Rows } from './variants.ts';
import type { Dataset, Pick } from './dataset.ts';

export const GATEWAYS = ['naive', 'tenantfence'] as const;
export type GatewayId = (typeof GATEWAYS)[number];
export const GATEWAY_APPLICATION_NAMES: Record<GatewayId, string> = { naive: 'tf-bench-naive-gateway', tenantfence: 'tf-bench-gateway' };

export type PostQuery = (pick: Pick, agent: Agent) => Promise<Rows>;

export interface Gateways {
  readonly post: Record<GatewayId, PostQuery>;
  close(): Promise<void>;
}

/** Both gateways' pools hold as many connections as the busiest cell has clients. */
export async function startGateways(ds: Dataset, poolSize: number): Promise<Gateways> {
  const jwtSecret = randomBytes(32).toString('base64url');
  const encoded = new TextEncoder().encode(jwtSecret);
  const tokens = new Map<string, string>();
  for (const { tenant } of ds.picks) {
    if (!tokens.has(tenant)) {
      tokens.set(tenant, await new SignJWT({ tenant_id: tenant, sub: 'tenantfence-bench' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('24h').sign(encoded));
    }
  }
  const agentUrl = new URL(urlForRole(ds.url, ds.roles.agent, ds.password));
  agentUrl.searchParams.set('application_name', GATEWAY_APPLICATION_NAMES.tenantfence);
  const servers: RunningServer[] = [];
  try {
    servers.push(
      await serve({
        port: 0,
        env: { TENANTFENCE_AGENT_DATABASE_URL: agentUrl.toString(), TENANTFENCE_SECRET: formatSecret(ds.key), TENANTFENCE_JWT_SECRET: jwtSecret },
        // The limiter runs on every request; its limits are set so that it never refuses one here.
        gateway: { poolSize, limits: { ratePerSecond: 1e6, burst: 1e6, maxConcurrent: 1e4 } },
      }),
    );
    const pool = ds.pool(ds.roles.plain, GATEWAY_APPLICATION_NAMES.naive, { max: poolSize });
    const naive = naiveGateway(pool);
    servers.push(await listenOn(naive.fetch, '127.0.0.1', 0, async () => undefined));
  } catch (error) {
    await Promise.all(servers.map((s) => s.close()));
    throw error;
  }
  const fenced = new URL('/v1/query', servers[0]!.url);
  const naive = new URL('/query', servers[1]!.url);
  const tenantfenceBody = JSON.stringify({ sql: SHAPES.Q1.fenced });
  return {
    post: {
      tenantfence: (pick, agent) => post(agent, fenced, tenantfenceBody, { Authorization: `Bearer ${tokens.get(pick.tenant)}` }),
      naive: (pick, agent) => post(agent, naive, JSON.stringify({ sql: SHAPES.Q1.filtered, params: SHAPES.Q1.filteredArgs(pick) }), {}),
    },
    close: async () => {
      await Promise.all(servers.map((s) => s.close()));
    },
  };
}

function post(agent: Agent, url: URL, body: string, headers: Record<string, string>): Promise<Rows> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', agent, headers: { ...headers, 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        if (res.statusCode !== 200) return reject(new Error(`${url.pathname} answered HTTP ${res.statusCode}: ${text.slice(0, 200)}`));
        resolve((JSON.parse(text) as { rows: Rows }).rows);
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}
