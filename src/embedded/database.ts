/**
 * Which server a command talks to: `DATABASE_URL` (or libpq's PG* variables) when set, otherwise
 * an embedded PostgreSQL that lives as long as the command.
 */
import pg from 'pg';
import { TenantfenceError, ErrorCodes, toTenantfenceError } from '../errors.ts';
import { startEmbedded } from './index.ts';

export interface DatabaseTarget {
  /** A connection string for an administrative role; undefined means libpq's PG* variables. */
  readonly url: string | undefined;
  readonly embedded: boolean;
  close(): Promise<void>;
}

const PG_VARIABLES = ['PGHOST', 'PGHOSTADDR', 'PGPORT', 'PGDATABASE', 'PGUSER', 'PGSERVICE'];

/**
 * `embedded`: start an embedded server when no database is configured. Commands that change or
 * judge the user's database pass false: run against a throwaway server they would print a key
 * for a database deleted a second later, or report a clean audit of nothing.
 */
export async function openDatabase(
  options: { url?: string | undefined; env?: NodeJS.ProcessEnv; embedded?: boolean } = {},
): Promise<DatabaseTarget> {
  const env = options.env ?? process.env;
  const url = options.url ?? env.DATABASE_URL;
  if (url !== undefined && url !== '') {
    return { url: validateUrl(url), embedded: false, close: async () => undefined };
  }
  if (PG_VARIABLES.some((name) => env[name])) {
    return { url: undefined, embedded: false, close: async () => undefined };
  }
  if (options.embedded === false) {
    throw new TenantfenceError(
      ErrorCodes.NO_DATABASE,
      'No database given; set DATABASE_URL (or pass --database-url, or libpq\'s PG* variables), or pass --embedded to run against a throwaway embedded PostgreSQL.',
    );
  }
  const server = await startEmbedded();
  return { url: server.url, embedded: true, close: () => server.stop() };
}

export function validateUrl(url: string): string {
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    parsed = undefined;
  }
  if (!parsed || (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:')) {
    throw new TenantfenceError(
      ErrorCodes.CONNECTION,
      'DATABASE_URL is not a PostgreSQL URL; write it as postgres://user:password@host:5432/database.',
    );
  }
  return url;
}

/** The same server and database as `url`, logged in as another role. */
export function urlForRole(url: string, role: string, password?: string): string {
  const parsed = new URL(url);
  parsed.username = encodeURIComponent(role);
  parsed.password = password === undefined ? '' : encodeURIComponent(password);
  return parsed.toString();
}

/** The same server, another database. */
export function urlForDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${encodeURIComponent(database)}`;
  return parsed.toString();
}

/** Connects a node-postgres client; connection failures become TF_CONNECTION errors. */
export async function connect(url: string | undefined): Promise<pg.Client> {
  // A server that accepts and never answers would hang the command: give up after libpq's
  // PGCONNECT_TIMEOUT seconds (default 10).
  const seconds = Number(process.env.PGCONNECT_TIMEOUT) > 0 ? Number(process.env.PGCONNECT_TIMEOUT) : 10;
  const client = new pg.Client({ ...(url === undefined ? {} : { connectionString: url }), connectionTimeoutMillis: seconds * 1000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (error) {
    await client.end().catch(() => undefined);
    const mapped = toTenantfenceError(error);
    throw mapped.code === ErrorCodes.DATABASE
      ? new TenantfenceError(ErrorCodes.CONNECTION, 'Could not connect to the database; check DATABASE_URL (host, port, user, password, database name).', { cause: error })
      : mapped;
  }
  return client;
}
