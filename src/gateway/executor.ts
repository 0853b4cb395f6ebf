/**
 * The executor (issue 3, item 4): runs ONE statement for one tenant as the agent role.
 *
 * Per request, on one pooled connection (agent-connection.ts: checked out within a time limit,
 * with a guard on message sizes), in this order:
 *   BEGIN [READ ONLY]
 *   SELECT set_config('tenantfence.context', $1, true), set_config('statement_timeout', $2, true), ...
 *   <the statement>                       extended protocol, bind parameters, Execute capped at maxRows + 1
 *   [write mode: the audit record, SELECT tenantfence.audit_append($1, $2)]
 *   ROLLBACK (reads) | COMMIT (writes); then the session is scrubbed (session-sql.ts)
 * On a pipelining pool (`pipeline: true`, the default) a read's four messages go out in one write
 * and come back in one round trip: nothing depends on the statement's outcome. A write waits for
 * the statement's result before it sends the rest, in a second round trip: its audit record holds
 * the result's row count, and it commits with the write or not at all; and nothing commits before
 * the gateway has read the whole result (a result the gateway cannot take is never committed).
 *
 * It does not call the firewall: the gateway service does, before it gets here. Tests call the
 * executor directly to show that the database alone (signed context, agent role, READ ONLY,
 * rollback, timeouts) holds when the firewall is skipped.
 */
import pg from 'pg';
import { signContext, type SigningKey } from '../context/token.ts';
import { assertTenantId } from '../context/tenant-id.ts';
import { checkout, tripped, ResultTooLargeError } from './agent-connection.ts';
import { CappedQuery, type CappedResult } from './capped-query.ts';
import { loadServerProfile, type ServerProfile } from './server-profile.ts';
import { COMMIT, ROLLBACK, SETUP, explainText } from './session-sql.ts';
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
    const token = signContext(o.key, request.tenant, { ttlSeconds: Math.max(60, Math.ceil(o.statementTimeoutMs / 1000) * 2) });
    const text = request.explain ? explainText(request.sql) : request.sql;
    // EXPLAIN never needs to write: even in write mode it runs READ ONLY and rolls back.
    const readOnly = o.mode === 'read' || request.explain === true;
    const dml = !request.explain && request.kind !== undefined && request.kind !== 'select';
    const client = await checkout(o.pool, o.connectTimeoutMs ?? 5000, o.maxResponseBytes + MESSAGE_SLACK);
    // Only a connection whose transaction ended (and whose session was scrubbed) goes back to the pool.
    let clean = false;
    try {
      const capped = new CappedQuery({ text, values: request.params, fetchRows: dml ? 0 : maxRows + 1, keepRows: maxRows + 1, maxBytes: o.maxResponseBytes, types: valueTypes });
      const send = (client as { pipeline?: boolean }).pipeline
        ? (steps: Step[]) => Promise.allSettled(steps.map((step) => step()))
        : inSequence;
      const end: Step = () => client.query(readOnly ? ROLLBACK : COMMIT);
      const [b, s, statement, ended] = await send([
        () => client.query(readOnly ? 'BEGIN READ ONLY' : 'BEGIN'),
        () => client.query({
          text: SETUP,
          values: [token, `${o.statementTimeoutMs}`, `${o.lockTimeoutMs}`, `${o.idleInTransactionTimeoutMs}`, this.#profile!.searchPath],
          queryMode: 'extended',
        } as pg.QueryConfig),
        // Not sent without its transaction and settings (pipelined, it cannot run without them
        // either: a failed BEGIN or SETUP aborts what follows).
        async (settled) => {
          if (settled?.some((r) => r.status === 'rejected')) throw new Error('not sent: the transaction could not be set up');
          client.query(capped as unknown as pg.QueryConfig);
          return capped.done;
        },
        ...(readOnly ? [end] : []),
      ]);
      const ran = b!.status === 'fulfilled' && s!.status === 'fulfilled' && statement!.status === 'fulfilled';
      const result = ran ? this.#shape((statement as PromiseFulfilledResult<CappedResult>).value, maxRows, dml) : undefined;
      let recorded: Settled | undefined;
      let e = ended;
      if (!readOnly && !tripped(client)) {
        const record = result && request.record;
        if (record) [recorded, e] = await send([async () => client.query(record(result)), end]);
        else [e] = await send([end]);
      }
      if (tripped(client)) throw new ResultTooLargeError(o.maxResponseBytes);
      if (!e || e.status === 'rejected') {
        // A COMMIT the server refused (a deferred constraint, a serialization failure) is the
        // statement's error; the scrub after it did not run, so the connection goes anyway.
        if (sqlstateOf(e?.reason) !== undefined) throw new StatementError(e!.reason);
        throw e?.reason ?? new Error('the transaction was not ended');
      }
      clean = true;
      if (b!.status === 'rejected') throw b!.reason;
      if (s!.status === 'rejected') throw s!.reason;
      if (statement!.status === 'rejected') throw new StatementError(statement!.reason);
      if (recorded?.status === 'rejected') throw new RecordError(recorded.reason);
      if (!readOnly && (e.value as Array<{ command: string }>)[0]?.command !== 'COMMIT') {
        throw new StatementError(Object.assign(new Error('the transaction did not commit'), { code: '40000' }));
      }
      return result!;
    } finally {
      client.release(clean ? undefined : new Error('the connection was not left clean'));
    }
  }

  #shape(result: CappedResult, maxRows: number, dml: boolean): ExecuteResult {
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
    const rowCount = dml && result.rowCount !== null ? result.rowCount : rows.length;
    return { columns, rows, rowCount, truncated: truncatedBy !== undefined, ...(truncatedBy ? { truncatedBy } : {}), command: result.command };
  }
}

type Settled = PromiseSettledResult<unknown>;
type Step = (settled?: Settled[]) => Promise<unknown>;

function sqlstateOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/**
 * Without pipelining, one message at a time (pg deprecates queueing behind a running query); each
 * step sees what the earlier ones settled to, and every step runs (the last one ends the transaction).
 */
async function inSequence(steps: Step[]): Promise<Settled[]> {
  const out: Settled[] = [];
  for (const step of steps) {
    try {
      out.push({ status: 'fulfilled', value: await step(out) });
    } catch (reason) {
      out.push({ status: 'rejected', reason });
    }
  }
  return out;
}
