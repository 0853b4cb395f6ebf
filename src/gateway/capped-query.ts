/**
 * One statement over the extended protocol with the row cap enforced by the server: Execute is sent
 * with a row limit (cap + 1, to learn whether more exist), so Postgres stops producing rows at the
 * cap instead of the gateway reading a whole result and cutting it (a `SELECT` of a billion rows
 * costs the server cap + 1 rows, not a billion).
 *
 * Why a subclass of pg's Query and not pg-cursor: pg refuses every custom query class on a
 * pipelining connection, and pipelining is what lets the executor send BEGIN, the context, the
 * statement and the ROLLBACK in one round trip (see executor.ts). This leans on two internals of
 * pg's Query (`_getRows`, `handlePortalSuspended`), which is why pg is pinned to an exact version
 * and test/gateway/executor.test.ts checks the cap on every run.
 *
 * Execute(limit) is followed by Sync at once: Postgres answers the rows, PortalSuspended and
 * ReadyForQuery. The suspended portal lives until the transaction ends, which the executor's next
 * message does. For INSERT/UPDATE/DELETE ... RETURNING, Postgres runs the whole statement on the
 * first Execute whatever the limit, so the executor asks for every row (`fetchRows: 0`) and keeps
 * `keepRows`: the rest are dropped unparsed, and the command tag then counts the rows affected.
 * Each row is bounded by the frame guard (agent-connection.ts), the rows kept by `maxBytes`.
 */
import pg from 'pg';

export interface CappedQueryOptions {
  readonly text: string;
  readonly values: readonly unknown[];
  /** Rows to ask for (the caller's cap + 1), or 0 for all of them. */
  readonly fetchRows: number;
  /** Rows to keep; the rest are counted by the server's command tag and dropped unparsed. */
  readonly keepRows: number;
  /** Stop keeping rows once their raw text passes this many UTF-8 bytes. */
  readonly maxBytes: number;
  readonly types: { getTypeParser: (oid: number, format?: string) => (value: string) => unknown };
}

export interface CappedResult {
  readonly fields: ReadonlyArray<{ name: string; dataTypeID: number }>;
  readonly rows: Record<string, unknown>[];
  /** The command tag (SELECT, INSERT, ...), null when the portal was suspended at the cap. */
  readonly command: string | null;
  /** Rows affected, from the command tag; null when suspended. */
  readonly rowCount: number | null;
  /** The server had more rows than fetchRows. */
  readonly suspended: boolean;
  /** Rows were dropped because their raw size passed maxBytes. */
  readonly overBytes: boolean;
}

interface PgConnection {
  execute(options: { portal: string; rows: number }): void;
  sync(): void;
}

type PgResult = { fields: Array<{ name: string; dataTypeID: number }>; rows: Record<string, unknown>[]; command: string | null; rowCount: number | null };

const QueryBase = (pg as unknown as { Query: new (config: object) => object }).Query;

export class CappedQuery extends QueryBase {
  readonly done: Promise<CappedResult>;
  #suspended = false;
  #overBytes = false;
  #bytes = 0;
  #kept = 0;
  readonly #options: CappedQueryOptions;
  declare portal: string;
  declare callback: (error: Error | null, result?: PgResult) => void;

  constructor(options: CappedQueryOptions) {
    // queryMode 'extended': without it pg sends a statement with no values over the simple
    // protocol, which accepts several statements in one string.
    super({ text: options.text, values: [...options.values], queryMode: 'extended', types: options.types });
    this.#options = options;
    this.done = new Promise((resolve, reject) => {
      this.callback = (error, result) => {
        if (error || !result) return reject(error ?? new Error('no result'));
        resolve({
          fields: result.fields,
          rows: result.rows,
          command: result.command,
          rowCount: result.rowCount,
          suspended: this.#suspended,
          overBytes: this.#overBytes,
        });
      };
    });
  }

  /** pg internal: sends Execute. Once, with the limit, then Sync so the round trip completes. */
  _getRows(connection: PgConnection): void {
    connection.execute({ portal: this.portal, rows: this.#options.fetchRows });
    connection.sync();
  }

  /** pg internal: the server stopped at the limit. pg would fetch more; the cap says stop. */
  handlePortalSuspended(): void {
    this.#suspended = true;
  }

  /** pg internal: one DataRow. Rows past the row or byte budget are dropped before they are parsed. */
  handleDataRow(message: { fields: Array<string | null> }): void {
    if (this.#overBytes || this.#kept >= this.#options.keepRows) return;
    this.#kept += 1;
    for (const field of message.fields) this.#bytes += field === null ? 4 : Buffer.byteLength(field) + 8;
    if (this.#bytes > this.#options.maxBytes) {
      this.#overBytes = true;
      return;
    }
    (QueryBase.prototype as unknown as { handleDataRow(this: unknown, m: unknown): void }).handleDataRow.call(this, message);
  }
}
