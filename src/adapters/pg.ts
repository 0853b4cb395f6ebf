/**
 * node-postgres binding of the fence engine (src/context/fence.ts): `withTenant(pool, tenant, fn)`
 * runs `fn(client)` in a fenced transaction; `tenantQuery(pool, tenant, text, values)` runs one
 * statement in one round trip. Everything that makes the fence lives in the engine; this file only
 * adapts a pg client to `FenceConnection`.
 *
 * Round trips (docs/context.md): `tenantQuery` 1 on any pool (the context, the statement and the
 * reset travel in one write); `withTenant` with N queries N + 1 on a pool created with
 * `pipeline: true` (node-postgres >= 8.23), N + 2 otherwise; strict mode (`bindToTransaction`)
 * adds two.
 *
 * The one-round-trip statement writes Parse/Bind/Describe/Execute for the context, the statement
 * and the reset, then a single Sync: one implicit transaction. node-postgres's own pipelining
 * sends a Sync after every query (each its own transaction), so this is a Query subclass, the
 * same seam the gateway's row-capped query uses; pg is pinned to an exact version for it.
 */
import { createRequire } from 'node:module';
import pg from 'pg';
import { TenantfenceError, ErrorCodes } from '../errors.ts';
import { fencedStatement, runFenced, type FenceConnection, type FenceOptions, type FenceResult, type FenceStatement } from '../context/fence.ts';

/** What tenantfence needs of a node-postgres client (a `pg.PoolClient`). */
export type PgClientLike = pg.PoolClient;

/** A `pg.Pool`, or anything with its `connect()`. */
export interface PgPoolLike {
  connect(): Promise<pg.PoolClient>;
}

export type WithTenantOptions = FenceOptions;

/**
 * Runs `fn(client)` in a fenced transaction for `tenant` (or, when it is omitted, the request's
 * tenant from `runWithTenant` / the HTTP middleware; `TF_NO_TENANT` when there is none).
 */
export function withTenant<T>(pool: PgPoolLike, tenant: string, fn: (client: pg.PoolClient) => Promise<T>, options?: WithTenantOptions): Promise<T>;
export function withTenant<T>(pool: PgPoolLike, fn: (client: pg.PoolClient) => Promise<T>, options?: WithTenantOptions): Promise<T>;
export function withTenant<T>(
  pool: PgPoolLike,
  tenantOrFn: string | ((client: pg.PoolClient) => Promise<T>),
  fnOrOptions?: ((client: pg.PoolClient) => Promise<T>) | WithTenantOptions,
  maybeOptions?: WithTenantOptions,
): Promise<T> {
  const [tenant, fn, options] = typeof tenantOrFn === 'function'
    ? [undefined, tenantOrFn, fnOrOptions as WithTenantOptions | undefined]
    : [tenantOrFn, fnOrOptions as (client: pg.PoolClient) => Promise<T>, maybeOptions];
  if (typeof fn !== 'function') throw new TenantfenceError(ErrorCodes.USAGE, 'withTenant needs a callback: withTenant(pool, tenant, async (client) => …).');
  return runFenced(() => connect(pool), tenant, (c) => fn((c as PgFenceConnection).client), options);
}

/** One statement for `tenant` in one round trip; returns node-postgres's result shape. */
export async function tenantQuery<R extends Record<string, unknown> = Record<string, unknown>>(
  pool: PgPoolLike,
  tenant: string | undefined,
  text: string,
  values: readonly unknown[] = [],
  options?: FenceOptions,
): Promise<FenceResult<R>> {
  return (await fencedStatement(() => connect(pool), tenant, { text, values }, options)) as FenceResult<R>;
}

/** Checks a client out and adapts it; the engine releases it. */
export async function connect(pool: PgPoolLike): Promise<PgFenceConnection> {
  return new PgFenceConnection(await pool.connect());
}

interface ClientInternals {
  connection: {
    stream: { cork?: () => void; uncork?: () => void };
    parsedStatements: Record<string, string>;
    parse(m: { text: string; name?: string }): void;
    bind(m: { portal?: string; statement?: string; values: unknown[]; valueMapper: (v: unknown) => unknown }): void;
    describe(m: { type: 'P' | 'S'; name?: string }): void;
    execute(m: { portal?: string; rows?: number }): void;
    sync(): void;
  };
  _txStatus?: 'I' | 'T' | 'E' | null;
  pipeline?: boolean;
  constructor: { Query?: QueryClass };
}

type QueryClass = new (config: object) => object;

/** Clients already watched for failure: one 'error' listener each, for the client's life. */
const failures = new WeakMap<object, { failed: boolean }>();

export class PgFenceConnection implements FenceConnection {
  readonly client: pg.PoolClient;
  readonly pipelining: boolean;
  readonly #state: { failed: boolean };

  constructor(client: pg.PoolClient) {
    this.client = client;
    this.pipelining = (client as unknown as ClientInternals).pipeline === true;
    let state = failures.get(client);
    if (!state) {
      const s = { failed: false };
      state = s;
      failures.set(client, s);
      // pg-pool listens for 'error' only while a client is idle; a checked-out client whose
      // backend is terminated would otherwise emit an unhandled 'error' and end the process.
      client.on('error', () => { s.failed = true; });
      client.on('end', () => { s.failed = true; });
    }
    this.#state = state;
  }

  async query(text: string, values?: readonly unknown[]): Promise<FenceResult> {
    const r = await this.client.query(values === undefined ? text : { text, values: [...values] });
    return { command: r.command, rows: r.rows, rowCount: r.rowCount };
  }

  async batch(text: string): Promise<FenceResult[]> {
    const r = (await this.client.query(text)) as unknown as pg.QueryResult | pg.QueryResult[];
    return (Array.isArray(r) ? r : [r]).map((x) => ({ command: x.command, rows: x.rows, rowCount: x.rowCount }));
  }

  implicit(statements: readonly unknown[]): Promise<FenceResult[]> {
    const Base = (this.client as unknown as ClientInternals).constructor.Query ?? (pg as unknown as { Query: QueryClass }).Query;
    const query = new (implicitQueryClass(Base))(statements as FenceStatement[]);
    this.client.query(query as unknown as pg.QueryConfig);
    return query.done;
  }

  transactionStatus(): 'I' | 'T' | 'E' | undefined {
    return (this.client as unknown as ClientInternals)._txStatus ?? undefined;
  }

  /** node-postgres names a statement only when the caller gives `name`; unnamed ones need no keeping. */
  driverStatements(): number | undefined {
    const n = Object.keys((this.client as unknown as ClientInternals).connection.parsedStatements).length;
    return n === 0 ? undefined : n;
  }

  failed(): boolean {
    return this.#state.failed;
  }

  release(destroy?: Error): void {
    this.client.release(destroy ?? (this.#state.failed ? new Error('the connection failed') : undefined));
  }
}

interface ImplicitQuery {
  readonly done: Promise<FenceResult[]>;
}

/** node-postgres's own conversion of a JS value to a bind parameter (Dates, arrays, Buffers, JSON). */
const { prepareValue } = createRequire(import.meta.url)('pg/lib/utils.js') as { prepareValue: (value: unknown) => unknown };

const implicitClasses = new WeakMap<QueryClass, new (statements: FenceStatement[]) => ImplicitQuery>();

/**
 * A Query that sends several statements with one Sync. Every statement's rows come back as raw
 * text keyed by column name, except the middle one (the caller's statement), whose rows go through
 * node-postgres's own type parsers exactly as `client.query` would return them.
 */
function implicitQueryClass(Base: QueryClass): new (statements: FenceStatement[]) => ImplicitQuery {
  const known = implicitClasses.get(Base);
  if (known) return known;
  type Message = { fields: Array<{ name: string }> | Array<string | null>; text?: string };
  const base = Base.prototype as unknown as Record<string, (this: unknown, ...args: unknown[]) => unknown>;
  class Implicit extends Base implements ImplicitQuery {
    readonly done: Promise<FenceResult[]>;
    readonly #statements: FenceStatement[];
    readonly #results: FenceResult[] = [];
    #index = 0;
    #names: string[] = [];
    #rows: Record<string, unknown>[] = [];
    declare callback: (error: Error | null, result?: pg.QueryResult) => void;

    constructor(statements: FenceStatement[]) {
      super({ text: statements[1]!.text, values: [...(statements[1]!.values ?? [])], queryMode: 'extended' });
      this.#statements = statements;
      this.done = new Promise((resolve, reject) => {
        this.callback = (error, result) => {
          if (error) return reject(error);
          this.#results[1] = { command: result!.command, rows: result!.rows, rowCount: result!.rowCount };
          resolve(this.#results);
        };
      });
    }

    submit(connection: ClientInternals['connection']): Error | null {
      connection.stream.cork?.();
      try {
        for (const s of this.#statements) {
          connection.parse({ text: s.text });
          connection.bind({ values: [...(s.values ?? [])], valueMapper: prepareValue });
          connection.describe({ type: 'P' });
          connection.execute({ rows: 0 });
        }
        connection.sync();
      } catch (error) {
        return error as Error;
      } finally {
        connection.stream.uncork?.();
      }
      return null;
    }

    handleRowDescription(message: Message): void {
      if (this.#index === 1) return void base.handleRowDescription!.call(this, message);
      this.#names = (message.fields as Array<{ name: string }>).map((f) => f.name);
    }

    handleDataRow(message: Message): void {
      if (this.#index === 1) return void base.handleDataRow!.call(this, message);
      const row: Record<string, unknown> = {};
      (message.fields as Array<string | null>).forEach((v, i) => { row[this.#names[i] ?? String(i)] = v; });
      this.#rows.push(row);
    }

    handleCommandComplete(message: Message, connection: unknown): void {
      if (this.#index === 1) base.handleCommandComplete!.call(this, message, connection);
      else this.#results[this.#index] = { command: message.text?.split(' ')[0] ?? null, rows: this.#rows, rowCount: null };
      this.#next();
    }

    handleEmptyQuery(): void {
      if (this.#index !== 1) this.#results[this.#index] = { command: null, rows: [], rowCount: null };
      this.#next();
    }

    #next(): void {
      this.#index += 1;
      this.#rows = [];
      this.#names = [];
    }
  }
  implicitClasses.set(Base, Implicit as unknown as new (statements: FenceStatement[]) => ImplicitQuery);
  return Implicit as unknown as new (statements: FenceStatement[]) => ImplicitQuery;
}
