/**
 * `tenantfence/gateway`: the agent SQL gateway for embedding (Node only). Every export here is
 * public API; the CLI (`tenantfence serve`, `tenantfence mcp`) is built on these.
 */
export { createGateway, type GatewayApp } from './http.ts';
export { agentQuery, AgentQueryError, type AgentQueryOptions } from './agent-query.ts';
export { GatewayService, type QueryResponse, type ErrorResponse, type Reply } from './service.ts';
export { createMcpServer, createMcpApp, serveMcpStdio, untrusted } from './mcp.ts';
export { optionsFromEnv, type GatewayOptions } from './options.ts';
export { createAuthenticator, type AuthOptions, type Principal } from '../auth/index.ts';
export type { LimitOptions } from './limits.ts';
export type { AuditRedaction } from './audit-log.ts';
export type { SchemaDescription, SchemaTable, SchemaColumn } from './schema.ts';
export type { Column } from './executor.ts';
