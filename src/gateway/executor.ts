/**
 * The executor (issue 3, item 4): runs ONE statement for one tenant as the agent role.
 *
 * Per request, on one pooled connection, in this order:
 *   BEGIN [READ ONLY]
 *   SELECT set_config('tenantfence.context', $1, true), set_config('statement_timeout', $2, true), ...
 *   <the statement>                       extended protocol, bind parameters, Execute capped at maxRows + 1
 *   ROLLBACK (reads) | COMMIT (writes); then the session is scrubbed (see END below)
 * On a pipelining pool (`pipeline: true`, the default) all four go out in one write and come back in
 * one round trip: nothing depends on the statement's outcome, because a failed statement leaves
 * the transaction aborted and COMMIT of an aborted transaction rolls back (its tag says ROLLBACK).
 *
 * It does not call the firewall: the gateway service does, before it gets here. Tests call the
 * executor directly to show that the database alone (signed context, agent role, READ ONLY,
 * rollback, timeouts) holds when the firewall is skipped.
 */
import pg from 'pg';
import { CONTEXT_SETTING, signContext, type SigningKey } from '../context/token.ts';
import { assertTenantId } from '../context/tenant-id.ts';
import { CappedQuery, type CappedResult } from './capped-query.ts';
import { loadServerProfile, type ServerProfile } from './server-profile.ts';
import { typeNames, valueTypes } from './types.ts';

export type ExecutorMode = 'read' | 'write';

/**
 * The statement the explain tool runs. COSTS OFF because row estimates count every tenant's rows
 * (statistics are not filtered by RLS); the firewall checks this exact text.
 */
export function explainText(sql: string): string {
  return `EXPLAIN (COSTS OFF) ${sql}`;
}

export interface ExecutorOptions {
  /** A pool that logs in as the agent role. The executor does not end it. */
  readonly pool: pg.Pool;
  readonly key: SigningKey;
  readonly mode: ExecutorMode;
  readonly statementTimeoutMs: number;
  readonly lockTimeoutMs: number;
  readonly idleInTransactionTimeoutMs: number;
  /** Default row cap (a request may ask for fewer, never more). */
  readonly maxRows: number;
  /** Cap on the serialized rows of one response, in bytes. */
  readonly maxResponseBytes: number;
}

export interface ExecuteRequest {
  readonly tenant: string;
  readonly sql: string;
  readonly params: readonly unknown[];
  readonly maxRows?: number;
  /** Plan the statement instead of running it: `EXPLAIN (COSTS OFF)`, never ANALYZE. */
  readonly explain?: boolean;
}

export interface Column {
  readonly name: string;
  readonly type: string;
}

export interface ExecuteResult {
  readonly columns: Column[];
  readonly rows: Record<string, unknown>[];
  /** Rows returned; for INSERT/UPDATE/DELETE without a cut, the rows the statement affected. */
  readonly rowCount: number;
  readonly truncated: boolean;
  readonly truncatedBy?: 'maxRows' | 'maxBytes';
  /** The command tag (SELECT, INSERT, UPDATE, DELETE, EXPLAIN); null when cut at the row cap. */
  readonly command: string | null;
}

/**
 * Nothing one request leaves on the connection may reach the next, whoever its tenant.
 * After a COMMIT (write mode) a session-level change survives (`set_config(..., false)`, a WITH
 * HOLD cursor, LISTEN, lastval()), so the context is cleared, settings reset, and prepared
 * statements, cursors, LISTEN registrations, sequence state and session advisory locks dropped.
 * DISCARD ALL would do it in one word but cannot run in the implicit transaction of a
 * multi-statement string, which keeps this to one message.
 * After a ROLLBACK (read mode) settings, the context, cursors and LISTEN are already undone, and
 * nextval() cannot run READ ONLY; only what is not transactional remains: prepared statements
 * and session advisory locks. The shorter scrub saves server time on every read.
 */
const CLEAR = `SELECT pg_advisory_unlock_all(), set_config('${CONTEXT_SETTING}', '', false)`;
const ROLLBACK = `ROLLBACK; DEALLOCATE ALL; ${CLEAR}`;
const COMMIT = `COMMIT; CLOSE ALL; DEALLOCATE ALL; UNLISTEN *; DISCARD SEQUENCES; RESET ALL; ${CLEAR}`;
/**
 * The transaction's settings, before the statement is parsed (it is a later message, so it is
 * parsed after these have run). standard_conforming_strings is forced on because the firewall's
 * parser assumes it: with it off (a role or database default) `'\' AS a, ' , pg_sleep(2) --'`
 * is two literals to the firewall and a pg_sleep call to the server. search_path: see
 * server-profile.ts.
 */
const SETUP = `SELECT set_config('${CONTEXT_SETTING}', $1, true), set_config('statement_timeout', $2, true),
  set_config('lock_timeout', $3, true), set_config('idle_in_transaction_session_timeout', $4, true),
  set_config('search_path', $5, true), set_config('standard_conforming_strings', 'on', true)`;

/** The statement failed; `cause` is the driver's error (with its SQLSTATE in `code`). */
export class StatementError extends Error {
  readonly sqlstate: string | undefined;
  constructor(cause: unknown) {
    super('statement failed', { cause });
    this.name = 'StatementError';
    const code = (cause as { code?: unknown })?.code;
    this.sqlstate = typeof code === 'string' ? code : undefined;
  }
}

export class Executor {
  readonly #o: ExecutorOptions;
  #names: Map<number, string> | undefined;
  #profile: ServerProfile | undefined;

  constructor(options: ExecutorOptions) {
    this.#o = Object.freeze({ ...options });
  }

  get mode(): ExecutorMode {
    return this.#o.mode;
  }

  /**
   * Loads, once, the type names (pg_type is readable by every role, so columns carry `uuid`,
   * `text`) and the server profile (version, pg_catalog functions, the pinned search_path).
   */
  async start(): Promise<void> {
    if (this.#names && this.#profile) return;
    const [names, profile] = await Promise.all([typeNames(this.#o.pool), loadServerProfile(this.#o.pool)]);
    this.#names = names;
    this.#profile = profile;
  }

  /** What `start()` learned about the server; the firewall needs it. Undefined before start. */
  get profile(): ServerProfile | undefined {
    return this.#profile;
  }

  async execute(request: ExecuteRequest): Promise<ExecuteResult> {
    assertTenantId(request.tenant);
    const o = this.#o;
    await this.start();
    const maxRows = Math.min(request.maxRows ?? o.maxRows, o.maxRows);
    const token = signContext(o.key, request.tenant, { ttlSeconds: Math.max(60, Math.ceil(o.statementTimeoutMs / 1000) * 2) });
    const text = request.explain ? explainText(request.sql) : request.sql;
    // EXPLAIN never needs to write: even in write mode it runs READ ONLY and rolls back.
    const readOnly = o.mode === 'read' || request.explain === true;
    const client = await o.pool.connect();
    let broken: Error | undefined;
    try {
      const capped = new CappedQuery({ text, values: request.params, fetchRows: maxRows + 1, maxBytes: o.maxResponseBytes, types: valueTypes });
      const steps: Array<() => Promise<unknown>> = [
        () => client.query(readOnly ? 'BEGIN READ ONLY' : 'BEGIN'),
        () => client.query({
          text: SETUP,
          values: [token, `${o.statementTimeoutMs}`, `${o.lockTimeoutMs}`, `${o.idleInTransactionTimeoutMs}`, this.#profile!.searchPath],
          queryMode: 'extended',
        } as pg.QueryConfig),
        () => (client.query(capped as unknown as pg.QueryConfig), capped.done),
        () => client.query(readOnly ? ROLLBACK : COMMIT),
      ];
      const [b, s, statement, e] = ((client as { pipeline?: boolean }).pipeline
        ? await Promise.allSettled(steps.map((step) => step()))
        : await inSequence(steps)) as [Settled, Settled, Settled, Settled];
      if (e.status === 'rejected') {
        broken = e.reason as Error;
        throw e.reason;
      }
      if (b.status === 'rejected') throw b.reason;
      if (s.status === 'rejected') throw s.reason;
      if (statement.status === 'rejected') throw new StatementError(statement.reason);
      if (!readOnly && (e.value as Array<{ command: string }>)[0]?.command !== 'COMMIT') {
        throw new StatementError(Object.assign(new Error('the transaction did not commit'), { code: '40000' }));
      }
      return this.#shape(statement.value as CappedResult, maxRows);
    } finally {
      // A connection whose transaction could not be ended is destroyed, never pooled again.
      client.release(broken);
    }
  }

  #shape(result: CappedResult, maxRows: number): ExecuteResult {
    const columns = result.fields.map((f) => ({ name: f.name, type: this.#names?.get(f.dataTypeID) ?? `oid:${f.dataTypeID}` }));
    let rows = result.rows;
    let truncatedBy: ExecuteResult['truncatedBy'];
    if (rows.length > maxRows || result.suspended) {
      rows = rows.slice(0, maxRows);
      truncatedBy = 'maxRows';
    }
    // The raw-size guard in CappedQuery bounds memory; this cut bounds the JSON actually sent.
    let bytes = 2;
    for (let i = 0; i < rows.length; i++) {
      bytes += Buffer.byteLength(JSON.stringify(rows[i])) + 1;
      if (bytes > this.#o.maxResponseBytes) {
        rows = rows.slice(0, i);
        truncatedBy = 'maxBytes';
        break;
      }
    }
    if (result.overBytes) truncatedBy = 'maxBytes';
    const command = result.command;
    const dml = command === 'INSERT' || command === 'UPDATE' || command === 'DELETE';
    const rowCount = dml && truncatedBy === undefined && result.rowCount !== null ? result.rowCount : rows.length;
    return { columns, rows, rowCount, truncated: truncatedBy !== undefined, ...(truncatedBy ? { truncatedBy } : {}), command };
  }
}

type Settled = PromiseSettledResult<unknown>;

/**
 * Without pipelining, one message at a time (pg deprecates queueing behind a running query), and
 * the statement is not even sent when BEGIN or the context failed; the last step always runs.
 */
async function inSequence(steps: ReadonlyArray<() => Promise<unknown>>): Promise<Settled[]> {
  const out: Settled[] = [];
  for (const [i, step] of steps.entries()) {
    if (i === 2 && out.some((r) => r.status === 'rejected')) {
      out.push({ status: 'rejected', reason: new Error('not sent: the transaction could not be set up') });
      continue;
    }
    try {
      out.push({ status: 'fulfilled', value: await step() });
    } catch (reason) {
      out.push({ status: 'rejected', reason });
    }
  }
  return out;
}
