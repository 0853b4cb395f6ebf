/**
 * `tenantfence mcp`: the gateway as an MCP server, over stdio (one tenant, from the token given at
 * start) or over Streamable HTTP (`--http`: the tenant of each request's bearer JWT).
 */
import { TenantfenceError, ErrorCodes } from '../../errors.ts';
import { createMcpApp, serveMcpStdio } from '../../gateway/mcp.ts';
import { optionsFromEnv } from '../../gateway/options.ts';
import { GatewayService } from '../../gateway/service.ts';
import { listenOn, startFailure, type GatewayCommandOptions, type RunningServer } from './serve.ts';

export interface McpOptions extends GatewayCommandOptions {
  /** Serve Streamable HTTP instead of stdio. */
  readonly http?: boolean;
  /** stdio: the tenant's JWT (default: TENANTFENCE_TOKEN). */
  readonly token?: string;
}

export type RunningMcp =
  | { readonly transport: 'stdio'; /** Settles when the client closes stdin. */ readonly ended: Promise<void>; close(): Promise<void> }
  | ({ readonly transport: 'http' } & RunningServer);

export async function mcp(options: McpOptions = {}): Promise<RunningMcp> {
  const env = options.env ?? process.env;
  const token = options.token ?? env.TENANTFENCE_TOKEN;
  if (!options.http && !token) {
    throw new TenantfenceError(ErrorCodes.USAGE, 'The stdio MCP server serves one tenant: pass --token <JWT> or set TENANTFENCE_TOKEN (or use --http for per-request tokens).');
  }
  const fromEnv = optionsFromEnv(env, options.agentRole ? { agentRole: options.agentRole } : {});
  const service = new GatewayService({ ...fromEnv, ...options.gateway, mode: options.write ? 'write' : 'read' });
  try {
    await service.start();
    if (!options.http) {
      const server = await serveMcpStdio(service, token!);
      const ended = new Promise<void>((resolve) => process.stdin.once('end', () => resolve()));
      return { transport: 'stdio', ended, close: async () => { await server.close(); await service.close(); } };
    }
  } catch (error) {
    await service.close();
    throw startFailure('The MCP server', error);
  }
  const app = createMcpApp(service);
  const running = await listenOn(app.fetch, options.host ?? '127.0.0.1', options.port ?? 8788, () => service.close());
  return { transport: 'http', ...running };
}
