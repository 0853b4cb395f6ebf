/**
 * Gateway options, checked once at construction (Hono's habit: a bad option fails at start-up,
 * not on the first request), and read from the environment for the CLI.
 */
import pg from 'pg';
import { TenantfenceError, ErrorCodes } from '../errors.ts';
import { parseSecret, type SigningKey } from '../context/token.ts';
import { DEFAULT_AGENT_ROLE } from '../sql/roles.ts';
import { urlForRole, validateUrl } from '../embedded/database.ts';
import { authOptionsFromEnv, type AuthOptions } from '../auth/index.ts';
import type { AuditRedaction } from './audit-log.ts';
import type { ExecutorMode } from './executor.ts';
import type { LimitOptions } from './limits.ts';
import { DEFAULT_MAX_VALUE_BYTES } from './firewall-size.ts';

export interface GatewayOptions {
  /** Where the agent role logs in (TENANTFENCE_AGENT_DATABASE_URL). Ignored when `pool` is given. */
  readonly agentDatabaseUrl?: string;
  /** Agent-role pools made by the caller (tests, embedding); the gateway does not end them. */
  readonly pool?: pg.Pool;
  readonly auditPool?: pg.Pool;
  /** The tenantfence signing key (TENANTFENCE_SECRET). */
  readonly key: SigningKey;
  readonly auth: AuthOptions;
  /** 'read' (default) or 'write' (`--write`: single INSERT/UPDATE/DELETE allowed). */
  readonly mode?: ExecutorMode;
  readonly maxRows?: number;
  readonly maxResponseBytes?: number;
  readonly maxStatementBytes?: number;
  readonly maxBodyBytes?: number;
  readonly maxParams?: number;
  readonly statementTimeoutMs?: number;
  readonly lockTimeoutMs?: number;
  readonly idleInTransactionTimeoutMs?: number;
  /** How long a request waits for a free agent connection before a 503 (default 5000). */
  readonly connectTimeoutMs?: number;
  readonly limits?: Partial<LimitOptions>;
  /** 'full' (default) keeps the statement text in the audit log; 'fingerprint' keeps only its hash. */
  readonly auditStatements?: AuditRedaction;
  readonly poolSize?: number;
  /** Pipeline the per-request messages on the agent connections (default true; see executor.ts). */
  readonly pipeline?: boolean;
  /**
   * Tables and views the agent may query besides the ones `tenantfence protect` protects
   * (`schema.table`; TENANTFENCE_EXPOSE, `--expose`): reference data without tenant rows. Every
   * other relation is refused by the firewall and left out of /v1/schema.
   */
  readonly exposeRelations?: readonly string[];
  /** The firewall's budget for the values one statement can build in the server (default 32 MiB; firewall-size.ts). */
  readonly maxValueBytes?: number;
  /** A bearer token /metrics requires (TENANTFENCE_METRICS_TOKEN); without one, /metrics is not served. */
  readonly metricsToken?: string;
}

export type ResolvedOptions = Required<Omit<GatewayOptions, 'pool' | 'auditPool' | 'agentDatabaseUrl' | 'limits' | 'metricsToken'>> & {
  readonly limits: LimitOptions;
  readonly agentDatabaseUrl: string | undefined;
  readonly metricsToken: string | undefined;
};

const DEFAULTS = {
  mode: 'read',
  maxRows: 1000,
  maxResponseBytes: 4 * 1024 * 1024,
  maxStatementBytes: 64 * 1024,
  maxBodyBytes: 256 * 1024,
  maxParams: 1000,
  statementTimeoutMs: 5000,
  lockTimeoutMs: 1000,
  idleInTransactionTimeoutMs: 10_000,
  connectTimeoutMs: 5000,
  auditStatements: 'full',
  poolSize: 10,
  pipeline: true,
  exposeRelations: [] as readonly string[],
  maxValueBytes: DEFAULT_MAX_VALUE_BYTES,
} as const;

export function resolveOptions(options: GatewayOptions): ResolvedOptions {
  if (!options.key?.secret || !options.key.kid) {
    throw usage('The gateway needs the tenantfence signing key: set TENANTFENCE_SECRET.');
  }
  if (!options.pool && !options.agentDatabaseUrl) {
    throw usage('The gateway needs the agent role\'s database: set TENANTFENCE_AGENT_DATABASE_URL or DATABASE_URL.');
  }
  if (options.agentDatabaseUrl) validateUrl(options.agentDatabaseUrl);
  const o = { ...DEFAULTS, ...definedOnly(options) };
  if (o.mode !== 'read' && o.mode !== 'write') throw usage('mode must be "read" or "write".');
  if (o.auditStatements !== 'full' && o.auditStatements !== 'fingerprint') throw usage('auditStatements must be "full" or "fingerprint".');
  integer('maxRows', o.maxRows, 1, 1_000_000);
  // A row is held whole while it arrives (agent-connection.ts), and V8 strings stop near 512 MiB.
  integer('maxResponseBytes', o.maxResponseBytes, 1024, 256 << 20);
  integer('maxStatementBytes', o.maxStatementBytes, 16, 1 << 20);
  integer('maxBodyBytes', o.maxBodyBytes, 1024, 64 << 20);
  integer('maxParams', o.maxParams, 0, 65_535);
  integer('statementTimeoutMs', o.statementTimeoutMs, 1, 3_600_000);
  integer('lockTimeoutMs', o.lockTimeoutMs, 1, 3_600_000);
  integer('idleInTransactionTimeoutMs', o.idleInTransactionTimeoutMs, 1, 3_600_000);
  integer('connectTimeoutMs', o.connectTimeoutMs, 1, 600_000);
  integer('poolSize', o.poolSize, 1, 1000);
  if (o.maxBodyBytes < o.maxStatementBytes) throw usage('maxBodyBytes must be at least maxStatementBytes.');
  integer('maxValueBytes', o.maxValueBytes, 1024, 1 << 30);
  if (!Array.isArray(o.exposeRelations) || o.exposeRelations.some((r) => typeof r !== 'string' || r === '')) throw usage('exposeRelations must be a list of table names.');
  const metricsToken = options.metricsToken;
  if (metricsToken !== undefined && metricsToken.length < 16) throw usage('metricsToken must be at least 16 characters.');
  const limits = { ratePerSecond: 10, burst: 20, maxConcurrent: 4, ...definedOnly(options.limits ?? {}) };
  if (!(limits.ratePerSecond > 0 && limits.ratePerSecond <= 1e6)) throw usage('limits.ratePerSecond must be a positive number.');
  integer('limits.burst', limits.burst, 1, 1e6);
  integer('limits.maxConcurrent', limits.maxConcurrent, 1, 1e4);
  return Object.freeze({ ...o, limits: Object.freeze(limits), agentDatabaseUrl: options.agentDatabaseUrl, metricsToken }) as ResolvedOptions;
}

/** The agent pool the gateway owns when none is given. */
export function createAgentPool(url: string, size: number, pipeline: boolean, connectTimeoutMs: number): pg.Pool {
  // connectionTimeoutMillis bounds a new connection's login; the executor bounds the wait for a
  // free one (agent-connection.ts), on pools given by the caller too.
  const pool = new pg.Pool({ connectionString: url, max: size, pipeline, connectionTimeoutMillis: connectTimeoutMs } as pg.PoolConfig);
  // An idle connection that drops is replaced on the next checkout; never crash the server.
  pool.on('error', () => undefined);
  return pool;
}

/** Options from the environment, as the CLI reads them; flags override them. */
export function optionsFromEnv(env: NodeJS.ProcessEnv, overrides: { agentRole?: string; expose?: readonly string[] } = {}): GatewayOptions {
  const dbUrl = env.DATABASE_URL;
  const agentUrl = env.TENANTFENCE_AGENT_DATABASE_URL || (dbUrl ? urlForRole(validateUrl(dbUrl), overrides.agentRole ?? DEFAULT_AGENT_ROLE) : undefined);
  const redaction = env.TENANTFENCE_AUDIT_STATEMENTS as AuditRedaction | undefined;
  const auth = authOptionsFromEnv(env);
  const num = (name: string) => (env[name] ? Number(env[name]) : undefined);
  return {
    key: parseSecret(env.TENANTFENCE_SECRET),
    auth,
    ...(agentUrl ? { agentDatabaseUrl: agentUrl } : {}),
    ...(redaction ? { auditStatements: redaction } : {}),
    exposeRelations: [...(env.TENANTFENCE_EXPOSE ?? '').split(',').map((s) => s.trim()).filter(Boolean), ...(overrides.expose ?? [])],
    ...(env.TENANTFENCE_METRICS_TOKEN ? { metricsToken: env.TENANTFENCE_METRICS_TOKEN } : {}),
    maxRows: num('TENANTFENCE_MAX_ROWS'),
    statementTimeoutMs: num('TENANTFENCE_STATEMENT_TIMEOUT_MS'),
    poolSize: num('TENANTFENCE_POOL_SIZE'),
    limits: {
      ratePerSecond: num('TENANTFENCE_RATE_PER_SECOND'),
      burst: num('TENANTFENCE_BURST'),
      maxConcurrent: num('TENANTFENCE_MAX_CONCURRENT'),
    },
  };
}

function integer(name: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) throw usage(`${name} must be an integer from ${min} to ${max}.`);
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function usage(message: string): TenantfenceError {
  return new TenantfenceError(ErrorCodes.USAGE, message);
}
