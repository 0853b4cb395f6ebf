/**
 * Shared setup for the gateway tests: a fenced test database (test/support/db.ts) and the agent
 * role's pool, with the options the gateway would use.
 */
import type pg from 'pg';
import { Executor, type ExecutorOptions } from '../../src/gateway/executor.ts';
import { createTestDatabase, installFence, type Fenced, type TestDatabase } from '../support/db.ts';

export interface Setup {
  readonly db: TestDatabase;
  readonly fence: Fenced;
  agentPool(options?: pg.PoolConfig): pg.Pool;
  executor(options?: Partial<ExecutorOptions>): Executor;
}

export async function setUp(options: { agentWrite?: boolean } = {}): Promise<Setup> {
  const db = await createTestDatabase();
  const fence = await installFence(db, options);
  const agentPool = (o: pg.PoolConfig = {}) => db.pool(db.roles.agent, { pipeline: true, ...o } as pg.PoolConfig);
  return {
    db,
    fence,
    agentPool,
    executor: (o = {}) =>
      new Executor({
        pool: o.pool ?? agentPool(),
        key: fence.key,
        mode: 'read',
        statementTimeoutMs: 2000,
        lockTimeoutMs: 1000,
        idleInTransactionTimeoutMs: 5000,
        maxRows: 1000,
        maxResponseBytes: 1 << 20,
        ...o,
      }),
  };
}

/** The SQLSTATE behind a rejection from the executor. */
export function sqlstateOf(error: unknown): string | undefined {
  return (error as { sqlstate?: string })?.sqlstate;
}

export const JWT_SECRET = 'test-secret-of-at-least-thirty-two-bytes!!';

/** A tenant's JWT as an identity provider would issue it. */
export async function jwt(claims: Record<string, unknown>, options: { secret?: string; expiresIn?: string | number } = {}): Promise<string> {
  const { SignJWT } = await import('jose');
  let t = new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setIssuedAt();
  if (options.expiresIn !== undefined) t = t.setExpirationTime(options.expiresIn);
  return t.sign(new TextEncoder().encode(options.secret ?? JWT_SECRET));
}

/** The audit records as the superuser sees them (ground truth). */
export async function auditRows(db: TestDatabase): Promise<Array<Record<string, unknown>>> {
  const { rows } = await db.admin.query(
    'SELECT tenant_id, principal, fingerprint, statement, verdict, reason, row_count::int, error_code, sqlstate FROM tenantfence.audit_log ORDER BY at',
  );
  return rows;
}

export interface QueryReply {
  readonly status: number;
  readonly id: string | null;
  readonly retryAfter: string | null;
  readonly body: any;
  readonly ms: number;
}

/** POST /v1/query in-process as the holder of `token`; the reply with what tests look at. */
export async function postQuery(app: { request: (path: string, init: RequestInit) => Response | Promise<Response> }, token: string, body: Record<string, unknown>): Promise<QueryReply> {
  const started = performance.now();
  const res = await app.request('/v1/query', { method: 'POST', headers: { Authorization: `Bearer ${token}` }, body: JSON.stringify(body) });
  return { status: res.status, id: res.headers.get('X-Request-Id'), retryAfter: res.headers.get('Retry-After'), body: await res.json(), ms: performance.now() - started };
}
