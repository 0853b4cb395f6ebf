/**
 * `tenantfence serve`: the agent SQL gateway's HTTP API on Node (Hono + @hono/node-server).
 * Resolves once the server listens; `close()` stops accepting, drains and ends the pools.
 */
import { serve as listen } from '@hono/node-server';
import type { AddressInfo } from 'node:net';
import { TenantfenceError, ErrorCodes, connectionProblem, toTenantfenceError } from '../../errors.ts';
import { createGateway } from '../../gateway/http.ts';
import { optionsFromEnv, type GatewayOptions } from '../../gateway/options.ts';

/** What `serve` and `mcp` share: where to listen, the mode, and the gateway's configuration. */
export interface GatewayCommandOptions {
  readonly port?: number;
  readonly host?: string;
  /** Allow single INSERT/UPDATE/DELETE (default: read-only). */
  readonly write?: boolean;
  readonly agentRole?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Options that override the environment (embedding, tests). */
  readonly gateway?: Partial<GatewayOptions>;
}

export type ServeOptions = GatewayCommandOptions;

export interface RunningServer {
  readonly url: string;
  close(): Promise<void>;
}

export async function serve(options: ServeOptions = {}): Promise<RunningServer> {
  const port = options.port ?? 8787;
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new TenantfenceError(ErrorCodes.USAGE, '--port must be a port number (0-65535).');
  const host = options.host ?? '127.0.0.1';
  const fromEnv = optionsFromEnv(options.env ?? process.env, options.agentRole ? { agentRole: options.agentRole } : {});
  const app = createGateway({ ...fromEnv, ...options.gateway, mode: options.write ? 'write' : 'read' });
  try {
    await app.service.start();
  } catch (error) {
    await app.close();
    throw startFailure('The gateway', error);
  }
  return listenOn(app.fetch, host, port, () => app.close());
}

/**
 * A gateway that cannot start says why: it logs in as the agent role, so the usual causes are that
 * role's login (no password in the URL, a wrong one) and a database where init has not run.
 */
export function startFailure(what: string, error: unknown): TenantfenceError {
  if (error instanceof TenantfenceError) return error;
  const problem = connectionProblem(error);
  if (problem) {
    return new TenantfenceError(
      ErrorCodes.CONNECTION,
      `${what} could not log in as the agent role (TENANTFENCE_AGENT_DATABASE_URL, or DATABASE_URL with the agent role as user): ${problem}.`,
      { cause: error },
    );
  }
  const mapped = toTenantfenceError(error);
  return new TenantfenceError(mapped.code, `${what} could not start (${mapped.message.replace(/\.$/, '')}); check that \`tenantfence init\` ran on this database.`, { cause: error });
}

/** Starts a Node HTTP server for a fetch handler; shared with `tenantfence mcp --http`. */
export function listenOn(fetch: (request: Request) => Response | Promise<Response>, host: string, port: number, cleanup: () => Promise<void>): Promise<RunningServer> {
  return new Promise((resolve, reject) => {
    const server = listen({ fetch, hostname: host, port }, (info: AddressInfo) => {
      const shown = info.family === 'IPv6' ? `[${info.address}]` : info.address;
      resolve({
        url: `http://${shown}:${info.port}`,
        close: () => new Promise<void>((done) => server.close(() => done())).then(cleanup),
      });
    });
    server.once('error', (error) => {
      cleanup().finally(() => reject(new TenantfenceError(ErrorCodes.USAGE, `Could not listen on ${host}:${port} (${(error as Error).message}); pick another --port or --host.`)));
    });
  });
}

/** Resolves on SIGINT or SIGTERM, for commands that run until stopped. */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (signal: NodeJS.Signals) => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(signal);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}
