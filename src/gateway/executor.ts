/**
 * The executor: runs ONE agent statement for one tenant as the agent role, on the fence engine
 * (src/context/fence.ts) like every other fenced transaction. What it adds: the agent pool's
 * checkout (agent-connection.ts: a time limit, and a guard on message sizes), the caps (rows
 * asked of the server, rows and bytes kept: `PgStatement`), and for writes the audit record.
 *
 * - Reads and EXPLAIN: one implicit transaction in ONE round trip: the signed context and the
 *   pinned settings (timeouts, search_path, standard_conforming_strings), the audit record when
 *   the gateway gives one (`recordFirst`), read-only from there on, the statement with Execute
 *   capped at maxRows + 1, the session reset; one Sync.
 * - Writes: `BEGIN READ WRITE` + the context + the statement (one round trip when pipelining),
 *   then the audit record `tenantfence.audit_append($1, $2)` and the engine's end (COMMIT + reset)
 *   written together: the write commits with its record or not at all, and nothing commits before
 *   the gateway has read the whole result (a result it cannot take is never committed).
 *
 * It does not call the firewall: the gateway service does, before it gets here. Tests call the
 * executor directly to show that the database alone (signed context, agent role, READ ONLY,
 * timeouts) holds when the firewall is skipped.
 */
import pg from 'pg';
import type { SigningKey } from '../context/token.ts';
import { assertTenantId } from '../context/tenant-id.ts';
import { TenantfenceError, sqlstateOf } from '../errors.ts';
import { fencedStatement, runFenced, type FenceOptions } from '../context/fence.ts';
import { failedStatement, PgFenceConnection, type PgStatement, type PgStatementResult } from '../adapters/pg.ts';
import { checkout, tripped, PoolTimeoutError, ResultTooLargeError } from './agent-connection.ts';
import { loadServerProfile, type ServerProfile } from './server-profile.ts';
import { explainText } from './explain.ts';
import { typeNames, valueTypes } from './types.ts';

export { explainText };

export type ExecutorMode = 'read' | 'write';

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
  /** How long a request waits for a free connection (default 5000 ms). */
  readonly connectTimeoutMs?: number;
}

export interface ExecuteRequest {
  readonly tenant: string;
  readonly sql: string;
  readonly params: readonly unknown[];
  readonly maxRows?: number;
  /** Plan the statement instead of running it: `EXPLAIN (COSTS OFF)`, never ANALYZE. */
  readonly explain?: boolean;
  /**
   * What the firewall said the statement is. For INSERT/UPDATE/DELETE every RETURNING row is read
   * (rows past the cap are counted, not kept), so `rowCount` is always the rows affected.
   */
  readonly kind?: 'select' | 'insert' | 'update' | 'delete';
  /** Write mode: the audit record to append inside the transaction, before COMMIT. */
  readonly record?: (result: ExecuteResult) => pg.QueryConfig;
  /**
   * Read-only requests: the audit record to append in the statement's own transaction, before
   * the statement and before the transaction turns read-only. The two commit together or not at
   * all, in the one round trip; a record the database refuses fails the request with `RecordError`.
   */
  readonly recordFirst?: { readonly text: string; readonly values?: readonly unknown[] };
}

export interface Column {
  readonly name: string;
  readonly type: string;
}

export interface ExecuteResult {
  readonly columns: Column[];
  readonly rows: Record<string, unknown>[];
  /** Rows returned by a SELECT; for INSERT/UPDATE/DELETE (with `kind`), the rows affected. */
  readonly rowCount: number;
  readonly truncated: boolean;
  readonly truncatedBy?: 'maxRows' | 'maxBytes';
  /** The command tag (SELECT, INSERT, UPDATE, DELETE, EXPLAIN); null when cut at the row cap. */
  readonly command: string | null;
}

/** Room for a message's own overhead above the response cap (a wide RowDescription, an error). */
const MESSAGE_SLACK = 1 << 20;

/** The statement failed; `cause` is the driver's error (with its SQLSTATE in `code`). */
export class StatementError extends Error {
  readonly sqlstate: string | undefined;
  constructor(cause: unknown) {
    super('statement failed', { cause });
    this.name = 'StatementError';
    this.sqlstate = sqlstateOf(cause);
  }
}

/** The audit record could not be appended inside a write's transaction, so it rolled back. */
export class RecordError extends Error {
  constructor(cause: unknown) {
    super('the audit record could not be appended; the transaction rolled back', { cause });
    this.name = 'RecordError';
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
    const text = request.explain ? explainText(request.sql) : request.sql;
    // EXPLAIN never needs to write: even in write mode it runs READ ONLY.
    const readOnly = o.mode === 'read' || request.explain === true;
    const dml = !request.explain && request.kind !== undefined && request.kind !== 'select';
    const statement: PgStatement = {
      text, values: request.params, fetchRows: dml ? 0 : maxRows + 1, keepRows: maxRows + 1, maxBytes: o.maxResponseBytes, types: valueTypes,
    };
    const options: FenceOptions = {
      key: o.key,
      ttlSeconds: Math.max(60, Math.ceil(o.statementTimeoutMs / 1000) * 2),
      readOnly,
      statementTimeoutMs: o.statementTimeoutMs,
      lockTimeoutMs: o.lockTimeoutMs,
      idleInTransactionTimeoutMs: o.idleInTransactionTimeoutMs,
      // The firewall's parser assumes standard_conforming_strings (explain.ts says why).
      settings: { search_path: this.#profile!.searchPath, standard_conforming_strings: 'on' },
      // The record is the read's only write: a crash may lose it, as the audit pool's records.
      ...(readOnly && request.recordFirst ? { prelude: request.recordFirst, asyncCommit: true } : {}),
    };
    let connection: PgFenceConnection | undefined;
    const acquire = async () => (connection = new PgFenceConnection(await checkout(o.pool, o.connectTimeoutMs ?? 5000, o.maxResponseBytes + MESSAGE_SLACK)));
    let recorded: Promise<unknown> | undefined;
    try {
      if (readOnly) {
        return this.#shape((await fencedStatement(acquire, request.tenant, statement, options)) as PgStatementResult, maxRows, dml);
      }
      return await runFenced(acquire, request.tenant, async (c) => {
        const pgc = c as PgFenceConnection;
        const [ran] = await pgc.implicit([statement], 0).catch((error: unknown) => { throw new StatementError(error); });
        const result = this.#shape(ran as PgStatementResult, maxRows, dml);
        if (request.record) {
          const { text: recordText, values } = request.record(result) as { text: string; values?: unknown[] };
          recorded = pgc.query(recordText, values);
          recorded.catch(() => undefined);
          // A pipelining connection writes the engine's end right behind the record; otherwise wait.
          if (!pgc.pipelining) await recorded.catch(() => undefined);
        }
        return result;
      }, options);
    } catch (error) {
      if (connection && tripped(connection.client)) throw new ResultTooLargeError(o.maxResponseBytes);
      if (error instanceof TenantfenceError && error.cause instanceof PoolTimeoutError) throw error.cause;
      // The engine's implicit transaction: [setup, record, read-only, statement, reset].
      if (readOnly && request.recordFirst && failedStatement(error) === 1) throw new RecordError(error);
      if (recorded && (await recorded.then(() => false, () => true))) throw new RecordError(await recorded.catch((e: unknown) => e));
      if (error instanceof StatementError || error instanceof TenantfenceError) throw error;
      // The statement, or the COMMIT the server refused (a deferred constraint, a serialization failure).
      throw sqlstateOf(error) !== undefined ? new StatementError(error) : error;
    }
  }

  #shape(result: PgStatementResult, maxRows: number, dml: boolean): ExecuteResult {
    const columns = result.fields.map((f) => ({ name: f.name, type: this.#names?.get(f.dataTypeID) ?? `oid:${f.dataTypeID}` }));
    let rows = result.rows;
    let truncatedBy: ExecuteResult['truncatedBy'];
    if (rows.length > maxRows || result.suspended) {
      rows = rows.slice(0, maxRows);
      truncatedBy = 'maxRows';
    }
    // The raw-size cap on the statement bounds memory; this cut bounds the JSON actually sent.
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
    const rowCount = dml && result.rowCount !== null ? result.rowCount : rows.length;
    return { columns, rows, rowCount, truncated: truncatedBy !== undefined, ...(truncatedBy ? { truncatedBy } : {}), command: result.command };
  }
}
