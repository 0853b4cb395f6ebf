/**
 * One request through the gateway, whichever door it came in by (REST in http.ts, MCP in mcp.ts):
 *
 *   validate the input → per-tenant limits → firewall → parameter count → executor → audit record
 *
 * Nothing reaches the database before the firewall has passed the statement, and no result leaves
 * before its audit record is written: a read's record is appended in the read's own transaction
 * before it runs, a write's after it runs and before COMMIT, so neither commits without its record;
 * refusals and failures are recorded on the audit pool (a reply whose record failed is withheld).
 * Replies are plain data (status + JSON body) so each door renders them its own way.
 */
import { randomUUID, createHash } from 'node:crypto';
import type pg from 'pg';
import { TenantfenceError, ErrorCodes, type ErrorCode } from '../errors.ts';
import { AuditLog, type AuditRecord } from './audit-log.ts';
import { createAuthenticator, type Authenticator, type Principal } from '../auth/index.ts';
import { describeFailure } from './db-errors.ts';
import { Executor, explainText, type ExecuteResult } from './executor.ts';
import { cachedCheck, checkExplain, loadFirewall, type FirewallOptions, type FirewallVerdict } from './firewall.ts';
import { TenantLimiter } from './limits.ts';
import { Metrics } from './metrics.ts';
import { createAgentPool, resolveOptions, type GatewayOptions, type ResolvedOptions } from './options.ts';
import { describeSchema, type SchemaDescription } from './schema.ts';
import { firewallRelations } from './server-profile.ts';
import { parseQueryInput, type QueryInput } from './input.ts';

/** The body of a 200 from POST /v1/query: the executor's result without its command tag, timed. */
export type QueryResponse = Omit<ExecuteResult, 'command'> & { readonly durationMs: number };

export interface ErrorResponse {
  readonly error: { readonly code: ErrorCode; readonly message: string; readonly sqlstate?: string; readonly reason?: string };
}

export type Reply<T> =
  | { readonly ok: true; readonly status: 200; readonly body: T; readonly requestId: string }
  | { readonly ok: false; readonly status: number; readonly body: ErrorResponse; readonly requestId: string; readonly retryAfterSeconds?: number };

const SCHEMA_TTL_MS = 30_000;

export class GatewayService {
  readonly options: ResolvedOptions;
  readonly metrics = new Metrics();
  readonly authenticate: Authenticator;
  readonly #executor: Executor;
  readonly #audit: AuditLog;
  readonly #limiter: TenantLimiter;
  readonly #pool: pg.Pool;
  readonly #owned: pg.Pool[] = [];
  #firewall: FirewallOptions;
  /** checkSql over #firewall, with its verdicts kept; replaced with #firewall. */
  #check: (sql: string) => FirewallVerdict;
  #started: Promise<void> | undefined;
  #schema: { at: number; value: Promise<SchemaDescription> } | undefined;

  constructor(options: GatewayOptions) {
    this.options = resolveOptions(options);
    const o = this.options;
    this.authenticate = createAuthenticator(o.auth);
    const own = (): pg.Pool => {
      const pool = createAgentPool(o.agentDatabaseUrl!, o.poolSize, o.pipeline, o.connectTimeoutMs);
      this.#owned.push(pool);
      return pool;
    };
    this.#pool = options.pool ?? own();
    // Audit records have their own connections: a pool saturated by slow agent statements must
    // not hold up the records of the statements that finished.
    const auditPool = options.auditPool ?? (options.pool ? options.pool : own());
    this.metrics.watchPool('agent', this.#pool);
    if (auditPool !== this.#pool) this.metrics.watchPool('audit', auditPool);
    this.#executor = new Executor({
      pool: this.#pool,
      key: o.key,
      mode: o.mode,
      statementTimeoutMs: o.statementTimeoutMs,
      lockTimeoutMs: o.lockTimeoutMs,
      idleInTransactionTimeoutMs: o.idleInTransactionTimeoutMs,
      maxRows: o.maxRows,
      maxResponseBytes: o.maxResponseBytes,
      connectTimeoutMs: o.connectTimeoutMs,
    });
    this.#audit = new AuditLog({ pool: auditPool, key: o.key, redaction: o.auditStatements });
    // The share is sized against the agent pool the gateway made; a caller's pool says its own size.
    // An explicit capacity wins (Infinity keeps no reserve: the benchmark, a single-tenant service).
    this.#limiter = new TenantLimiter({ capacity: options.pool ? poolMax(options.pool) : o.poolSize, ...o.limits });
    this.#firewall = { mode: o.mode, maxBytes: o.maxStatementBytes, maxValueBytes: o.maxValueBytes };
    this.#check = cachedCheck(this.#firewall);
  }

  /**
   * Loads the firewall's parser, the type names and the server profile (the firewall then allows
   * only the syntax and functions this server has); call it before listening to fail fast.
   */
  start(): Promise<void> {
    this.#started ??= Promise.all([loadFirewall(), this.#executor.start()]).then(() => {
      const profile = this.#executor.profile!;
      this.#firewall = { ...this.#firewall, server: profile, relations: firewallRelations(profile, this.options.exposeRelations) };
      this.#check = cachedCheck(this.#firewall);
    });
    this.#started.catch(() => (this.#started = undefined));
    return this.#started;
  }

  async close(): Promise<void> {
    await Promise.all(this.#owned.map((p) => p.end().catch(() => undefined)));
  }

  /** A liveness probe that also proves the agent role can log in. */
  async healthy(): Promise<boolean> {
    try {
      await this.#pool.query({ text: 'SELECT 1', values: [], queryMode: 'extended' } as pg.QueryConfig);
      return true;
    } catch {
      return false;
    }
  }

  /** What the agent may query; a `TF_CONNECTION` error when the database cannot be reached. */
  schema(): Promise<SchemaDescription> {
    const now = Date.now();
    if (!this.#schema || now - this.#schema.at > SCHEMA_TTL_MS) {
      const value = this.start().then(() => describeSchema(this.#pool, this.options.mode === 'write', this.#firewall.relations!.allowed)).catch((error: unknown) => {
        this.#schema = undefined;
        throw new TenantfenceError(ErrorCodes.CONNECTION, 'The gateway cannot reach the database as the agent role right now; retry shortly.', { cause: error });
      });
      this.#schema = { at: now, value };
    }
    return this.#schema.value;
  }

  /** Runs one statement (`explain`: plans it, `EXPLAIN (COSTS OFF)`) for the principal. */
  async query(principal: Principal, body: unknown, options: { explain?: boolean } = {}): Promise<Reply<QueryResponse>> {
    const requestId = randomUUID();
    let input: QueryInput;
    try {
      input = parseQueryInput(body, this.options);
    } catch (error) {
      this.metrics.rejection('bad_request');
      return fail(requestId, error);
    }
    const admission = this.#limiter.acquire(principal.tenant);
    if (!admission.ok) {
      this.metrics.rejection(admission.reason);
      const message = admission.reason === 'rate'
        ? `Too many requests for this tenant; wait ${admission.retryAfterSeconds} s (Retry-After) and send fewer statements.`
        : admission.reason === 'capacity'
          ? 'The gateway keeps its last connections for tenants with nothing running, and this tenant has a statement running; wait for it to finish and retry.'
          : 'Too many statements of this tenant are running at once; wait for one to finish and retry.';
      return { ok: false, status: 429, requestId, retryAfterSeconds: admission.retryAfterSeconds, body: errorBody(ErrorCodes.RATE_LIMITED, message, { reason: admission.reason }) };
    }
    try {
      return await this.#run(requestId, principal, input, options.explain === true);
    } finally {
      admission.release();
    }
  }

  async #run(requestId: string, principal: Principal, input: QueryInput, explain: boolean): Promise<Reply<QueryResponse>> {
    try {
      await this.start();
    } catch {
      return { ok: false, status: 503, requestId, body: errorBody(ErrorCodes.CONNECTION, 'The gateway cannot reach the database as the agent role yet; retry shortly.') };
    }
    const base = { requestId, tenant: principal.tenant, principal: principal.subject, statement: input.sql };
    let verdict;
    try {
      verdict = explain ? checkExplain(explainText(input.sql), this.#firewall) : this.#check(input.sql);
    } catch {
      // A firewall that cannot decide refuses (fail closed).
      verdict = { ok: false as const, reason: 'firewall_error', message: 'The statement could not be checked; rewrite it as one simpler statement.' };
    }
    const fingerprint = verdict.ok ? verdict.fingerprint : `sha256:${createHash('sha256').update(input.sql).digest('hex').slice(0, 16)}`;
    if (!verdict.ok) {
      this.metrics.rejection(verdict.reason);
      const body = errorBody(ErrorCodes.SQL_REJECTED, verdict.message, { reason: verdict.reason });
      return this.#audited({ ...base, fingerprint, verdict: 'rejected', reason: verdict.reason, code: ErrorCodes.SQL_REJECTED }, { ok: false, status: 422, requestId, body });
    }
    if (verdict.paramCount !== input.params.length) {
      this.metrics.rejection('param_count');
      const message = `The statement uses ${verdict.paramCount} parameter(s) ($1..$${verdict.paramCount}) but "params" has ${input.params.length}; send one value per placeholder.`;
      return this.#audited(
        { ...base, fingerprint, verdict: 'rejected', reason: 'param_count', code: ErrorCodes.BAD_REQUEST },
        { ok: false, status: 400, requestId, body: errorBody(ErrorCodes.BAD_REQUEST, message, { reason: 'param_count' }) },
      );
    }
    const started = performance.now();
    const elapsed = () => Math.round((performance.now() - started) * 1000) / 1000;
    // A write's record is appended inside its own transaction, so the two commit together or not
    // at all: no committed write without its record (a data-modifying CTE is refused, so in read
    // mode, and for EXPLAIN, nothing is written).
    const write = this.options.mode === 'write' && !explain;
    const ok = (rows: number): AuditRecord => ({ ...base, fingerprint, verdict: 'ok', rows, durationMs: elapsed() });
    // A read's record goes in the read's own transaction, written before it runs (so without its
    // row count and duration) in the same round trip: the result and its record commit together.
    const recordFirst = write ? undefined : this.#audit.statement({ ...base, fingerprint, verdict: 'ok' });
    try {
      const result = await this.#executor.execute({
        tenant: principal.tenant,
        sql: input.sql,
        params: input.params,
        maxRows: input.maxRows,
        explain,
        kind: verdict.kind,
        ...(write ? { record: (r: ExecuteResult) => this.#audit.statement(ok(r.rowCount)) } : { recordFirst }),
      });
      const { columns, rows, rowCount, truncated, truncatedBy } = result;
      const body: QueryResponse = { columns, rows, rowCount, truncated, ...(truncatedBy ? { truncatedBy } : {}), durationMs: elapsed() };
      return { ok: true as const, status: 200 as const, requestId, body };
    } catch (error) {
      const d = describeFailure(error, { ...this.options, write });
      if (d.code === ErrorCodes.AUDIT) this.metrics.auditFailure();
      const sqlstate = d.sqlstate ? { sqlstate: d.sqlstate } : {};
      const body = errorBody(d.code, d.message, sqlstate);
      return this.#audited({ ...base, fingerprint, verdict: 'error', durationMs: elapsed(), code: d.code, ...sqlstate }, { ok: false, status: d.status, requestId, body });
    }
  }

  /** Appends the record on the audit pool, then replies; a reply whose record failed is withheld. */
  async #audited<T extends Reply<QueryResponse>>(record: AuditRecord, reply: T): Promise<T | Reply<QueryResponse>> {
    try {
      await this.#audit.append(record);
      return reply;
    } catch (error) {
      // The request id is the key: a duplicate means this request's record is already there
      // (a write whose connection was lost after its COMMIT reached the server).
      if ((error as { code?: unknown }).code === '23505') return reply;
      this.metrics.auditFailure();
      const message = 'The audit record could not be written, so the result is withheld; retry, and tell an operator if it persists.';
      return { ok: false, status: 503, requestId: reply.requestId, body: errorBody(ErrorCodes.AUDIT, message) };
    }
  }
}

export function errorBody(code: ErrorCode, message: string, extra: { sqlstate?: string; reason?: string } = {}): ErrorResponse {
  return { error: { code, message, ...extra } };
}

/** pg.Pool keeps its `max` in `options`. */
function poolMax(pool: pg.Pool): number | undefined {
  const max = (pool as unknown as { options?: { max?: unknown } }).options?.max;
  return typeof max === 'number' && max > 0 ? max : undefined;
}

function fail(requestId: string, error: unknown): Reply<never> {
  if (error instanceof TenantfenceError) {
    const status = error.code === ErrorCodes.PAYLOAD_TOO_LARGE ? 413 : 400;
    return { ok: false, status, requestId, body: errorBody(error.code, error.message) };
  }
  throw error;
}
