/**
 * Agent SQL in-process: `agentQuery(pool, tenant, sql, params)` runs LLM-written SQL through the
 * gateway's whole pipeline (per-tenant limits, the parse-tree firewall, one fenced statement as the
 * agent role, the signed audit record) without an HTTP hop. It is the one in-process door for
 * agent SQL (DESIGN.md, "Two kinds of SQL"): `withTenant` runs application SQL and does not stop
 * what only the firewall stops (docs/redteam.md, "The trust boundary").
 *
 * `pool` must log in as the agent role (`tenantfence_agent`), never the app role. One gateway
 * service is kept per pool, made on the first call with that call's options.
 */
import type pg from 'pg';
import { TenantfenceError, ErrorCodes } from '../errors.ts';
import { resolveTenant } from '../context/fence.ts';
import { parseSecret, type SigningKey } from '../context/token.ts';
import type { GatewayOptions } from './options.ts';
import { GatewayService, type QueryResponse } from './service.ts';

export interface AgentQueryOptions extends Omit<GatewayOptions, 'pool' | 'auditPool' | 'agentDatabaseUrl' | 'auth' | 'key'> {
  /** The signing key; defaults to `TENANTFENCE_SECRET`. */
  readonly key?: SigningKey;
  /** Who asked (an agent or user id), kept in the audit record. */
  readonly principal?: string;
}

/** A refusal or failure of agent SQL: the gateway's code, message and, for refusals, the reason. */
export class AgentQueryError extends TenantfenceError {
  readonly reason: string | undefined;
  readonly sqlstate: string | undefined;
  constructor(body: { code: TenantfenceError['code']; message: string; reason?: string; sqlstate?: string }) {
    super(body.code, body.message);
    this.name = 'AgentQueryError';
    this.reason = body.reason;
    this.sqlstate = body.sqlstate;
  }
}

const services = new WeakMap<pg.Pool, GatewayService>();

/** In-process calls carry no token: the service's authenticator refuses every one it is shown. */
const noTokens = async (): Promise<never> => {
  throw new TenantfenceError(ErrorCodes.UNAUTHENTICATED, 'agentQuery takes no tokens; the caller names the tenant.');
};

export async function agentQuery(
  pool: pg.Pool,
  tenant: string | undefined,
  sql: string,
  params: readonly unknown[] = [],
  options: AgentQueryOptions = {},
): Promise<QueryResponse> {
  const id = resolveTenant(tenant);
  let service = services.get(pool);
  if (!service) {
    const { principal: _principal, ...gateway } = options;
    service = new GatewayService({ ...gateway, pool, key: options.key ?? parseSecret(process.env.TENANTFENCE_SECRET), auth: { jwks: noTokens } });
    services.set(pool, service);
  }
  const reply = await service.query({ tenant: id, subject: options.principal ?? null }, { sql, params: [...params] });
  if (reply.ok) return reply.body;
  throw new AgentQueryError(reply.body.error);
}
