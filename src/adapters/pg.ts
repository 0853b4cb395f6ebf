/**
 * node-postgres binding of the fence engine (src/context/fence.ts): `withTenant(pool, tenant, fn)`
 * runs `fn(client)` in a fenced transaction; `tenantQuery(pool, tenant, text, values)` runs one
 * statement in one round trip. Everything that makes the fence lives in the engine; this file only
 * adapts a pg client to `FenceConnection`.
 *
 * Round trips (docs/context.md): `tenantQuery` 1 on any pool (the context, the statement and the
 * reset travel in one write); `withTenant` with N queries N + 1 on a pool created with
 * `pipeline: true` (node-postgres >= 8.23), where BEGIN and the context travel with the first query,
 * and N + 2 otherwise, where they are one message of their own; strict mode (`bindToTransaction`)
 * adds two.
 *
 * The one-round-trip statement writes Parse/Bind/Describe/Execute for the context, the statement
 * and the reset, then a single Sync: one implicit transaction. node-postgres's own pipelining
 * sends a Sync after every query (each its own transaction), so this is a Query subclass, the
 * same seam the gateway's row-capped query uses; pg is pinned to an exact version for it.
 */
import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import pg from 'pg';
import { tenantArguments } from './lease.ts';
import { TenantfenceError, ErrorCodes } from '../errors.ts';
import { fencedStatement, runFenced, type FenceConnection, type FenceOptions, type FenceResult, type FenceStatement } from '../context/fence.ts';

/** What tenantfence needs of a node-postgres client (a `pg.PoolClient`). */
export type PgClientLike = pg.PoolClient;

/** A `pg.Pool`, or anything with its `connect()`. */
export interface PgPoolLike {
  connect(): Promise<pg.PoolClient>;
  on?(event: 'acquire', listener: (client: pg.PoolClient) => void): unknown;
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
  const [tenant, fn, options] = tenantArguments(tenantOrFn, fnOrOptions, maybeOptions);
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

export interface RolePoolConfig extends Omit<pg.PoolConfig, 'user' | 'max'> {
  /** The login roles, one connection each: `init --app-logins N` creates `<app role>_c1` … `_cN`. */
  readonly roles: readonly string[];
}

/**
 * A pool whose every connection logs in as a role of its own (`rolePool({ connectionString,
 * roles })`): PostgreSQL lets a session cancel, terminate and watch (pg_stat_activity, with SQL
 * text) only sessions of roles it has the privileges of, so with one role per connection, members
 * of the app role and never of each other, one tenant's SQL cannot reach the request of another
 * tenant running at the same time (docs/context.md, "Connection roles"). It is a set of
 * one-connection node-postgres pools behind `connect()`; the fence engine and `withTenant` /
 * `tenantQuery` take it as they take a `pg.Pool`. Idle-client errors go to its own 'error'
 * listeners (none: ignored; the client is dropped and replaced either way).
 */
export class RolePool extends EventEmitter implements PgPoolLike {
  readonly #pools: pg.Pool[];
  #next = 0;

  constructor(config: RolePoolConfig) {
    super();
    const { roles, connectionString, ...rest } = config;
    if (!Array.isArray(roles) || roles.length === 0 || new Set(roles).size !== roles.length || roles.some((r) => typeof r !== 'string' || r === '')) {
      throw new TenantfenceError(ErrorCodes.USAGE, 'rolePool needs a list of distinct login roles (init --app-logins N creates <app role>_c1 … _cN).');
    }
    this.#pools = roles.map((role) => {
      const pool = new pg.Pool({ ...rest, ...(connectionString ? { connectionString: withUser(connectionString, role) } : {}), user: role, max: 1 });
      pool.on('error', (error) => { if (this.listenerCount('error') > 0) this.emit('error', error); });
      pool.on('acquire', (client) => this.emit('acquire', client));
      return pool;
    });
  }

  /** A connection: an idle one, else one not opened yet, else a place in the shortest queue. */
  connect(): Promise<pg.PoolClient> {
    const n = this.#pools.length;
    let best: pg.Pool | undefined;
    for (let k = 0; k < n; k++) {
      const pool = this.#pools[(this.#next + k) % n]!;
      if (pool.idleCount > 0 || pool.totalCount === 0) {
        best = pool;
        break;
      }
      if (!best || pool.waitingCount < best.waitingCount) best = pool;
    }
    this.#next = (this.#next + 1) % n;
    return best!.connect();
  }

  /** Connections open now, across the roles. */
  get totalCount(): number {
    return this.#pools.reduce((sum, p) => sum + p.totalCount, 0);
  }

  async end(): Promise<void> {
    await Promise.all(this.#pools.map((p) => p.end()));
  }
}

export function rolePool(config: RolePoolConfig): RolePool {
  return new RolePool(config);
}

/** The connection string with its user replaced (the string's user would win over `user`). */
function withUser(connectionString: string, role: string): string {
  const url = new URL(connectionString);
  url.username = encodeURIComponent(role);
  return url.toString();
}

/** Pools whose clients get the failure watch as they are handed out. */
const watchedPools = new WeakSet<object>();

/** Checks a client out and adapts it; the engine releases it. */
export async function connect(pool: PgPoolLike): Promise<PgFenceConnection> {
  // pg-pool stops listening for a client's 'error' when it hands the client out, and the
  // caller's code runs a microtask later: a backend terminated in between (its FATAL message in
  // the same read as the connect's last one) would emit an unhandled 'error' and end the
  // process. Its 'acquire' event fires synchronously before that, so the watch starts there.
  if (pool.on && !watchedPools.has(pool)) {
    watchedPools.add(pool);
    pool.on('acquire', (client) => watch(client));
  }
  return new PgFenceConnection(await pool.connect());
}

/** One 'error' and 'end' listener per client, for the client's whole life. */
function watch(client: pg.PoolClient): { failed: boolean } {
  let state = failures.get(client);
  if (!state) {
    const s = { failed: false };
    state = s;
    failures.set(client, s);
    client.on('error', () => { s.failed = true; });
    client.on('end', () => { s.failed = true; });
  }
  return state;
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
    // pg-pool listens for 'error' only while a client is idle; a checked-out client whose
    // backend is terminated would otherwise emit an unhandled 'error' and end the process.
    this.#state = watch(client);
  }

  async query(text: string, values?: readonly unknown[]): Promise<FenceResult> {
    const r = await this.client.query(values === undefined ? text : { text, values: [...values] });
    return { command: r.command, rows: r.rows, rowCount: r.rowCount };
  }

  async batch(text: string): Promise<FenceResult[]> {
    const r = (await this.client.query(text)) as unknown as pg.QueryResult | pg.QueryResult[];
    return (Array.isArray(r) ? r : [r]).map((x) => ({ command: x.command, rows: x.rows, rowCount: x.rowCount }));
  }

  /**
   * The statements with one Sync. The engine keeps statement 1 (setup, statement, reset); the
   * gateway sends one capped statement inside a fenced transaction block and keeps statement 0.
   */
  implicit(statements: readonly unknown[], keep = 1): Promise<FenceResult[]> {
    const Base = (this.client as unknown as ClientInternals).constructor.Query ?? (pg as unknown as { Query: QueryClass }).Query;
    const query = new (implicitQueryClass(Base))(statements as PgStatement[], keep);
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
    const internals = this.client as unknown as { _queryable?: boolean; _ending?: boolean };
    return this.#state.failed || internals._queryable === false || internals._ending === true;
  }

  release(destroy?: Error): void {
    this.client.release(destroy ?? (this.failed() ? new Error('the connection failed') : undefined));
  }
}

/**
 * A statement for `PgFenceConnection.implicit`, with optional caps enforced while rows arrive (the
 * gateway's): the server stops at `fetchRows` (Execute's row limit; it answers PortalSuspended
 * when more exist), rows past `keepRows` or past `maxBytes` of raw text are dropped unparsed.
 */
export interface PgStatement extends FenceStatement {
  /** Rows to ask the server for (0 or absent: all). */
  readonly fetchRows?: number;
  /** Rows to keep; the rest are counted by the command tag and dropped unparsed. */
  readonly keepRows?: number;
  /** Stop keeping rows once their raw text passes this many bytes. */
  readonly maxBytes?: number;
  /** Type parsers for the kept statement's values (default: the client's). */
  readonly types?: { getTypeParser: (oid: number, format?: string) => (value: string) => unknown };
}

/** The kept statement's result, with what the caps did. */
export interface PgStatementResult extends FenceResult {
  readonly fields: ReadonlyArray<{ name: string; dataTypeID: number }>;
  /** The server had more rows than `fetchRows`. */
  readonly suspended: boolean;
  /** Rows were dropped because their raw size passed `maxBytes`. */
  readonly overBytes: boolean;
}

interface ImplicitQuery {
  readonly done: Promise<FenceResult[]>;
}

type ImplicitClass = new (statements: PgStatement[], keep: number) => ImplicitQuery;

/** node-postgres's own conversion of a JS value to a bind parameter (Dates, arrays, Buffers, JSON). */
const { prepareValue } = createRequire(import.meta.url)('pg/lib/utils.js') as { prepareValue: (value: unknown) => unknown };

const implicitClasses = new WeakMap<QueryClass, ImplicitClass>();
const failedAt = new WeakMap<object, number>();

/** The index of the statement an `implicit` call's error came from; undefined for other errors. */
export function failedStatement(error: unknown): number | undefined {
  return error !== null && typeof error === 'object' ? failedAt.get(error) : undefined;
}

/**
 * A Query that sends several statements with one Sync: one implicit transaction (or, inside a
 * transaction block, one more step of it). Only the kept statement (the caller's) is described:
 * its rows go through node-postgres's own type parsers exactly as `client.query` returns them; the
 * others' rows come back as raw text keyed by position ('0', '1', …), which spares a Describe and
 * a RowDescription for each. It subclasses the client's own Query class:
 * node-postgres refuses other query objects on a pipelining connection. It leans on Query's
 * message handlers, which is why pg is pinned to an exact version and the tests cover it.
 */
function implicitQueryClass(Base: QueryClass): ImplicitClass {
  const known = implicitClasses.get(Base);
  if (known) return known;
  type Message = { fields: Array<{ name: string }> | Array<string | null>; text?: string };
  type Parsed = { fields: Array<{ name: string; dataTypeID: number }>; rows: Record<string, unknown>[]; command: string | null; rowCount: number | null };
  const base = Base.prototype as unknown as Record<string, (this: unknown, ...args: unknown[]) => unknown>;
  class Implicit extends Base implements ImplicitQuery {
    readonly done: Promise<FenceResult[]>;
    readonly #statements: PgStatement[];
    readonly #keep: number;
    readonly #results: FenceResult[] = [];
    #index = 0;
    #rows: Record<string, unknown>[] = [];
    #kept = 0;
    #bytes = 0;
    #suspended = false;
    #overBytes = false;
    declare callback: (error: Error | null, result?: Parsed) => void;

    constructor(statements: PgStatement[], keep: number) {
      const kept = statements[keep]!;
      super({ text: kept.text, values: [...(kept.values ?? [])], queryMode: 'extended', ...(kept.types ? { types: kept.types } : {}) });
      this.#statements = statements;
      this.#keep = keep;
      this.done = new Promise((resolve, reject) => {
        this.callback = (error, result) => {
          if (error || !result) return reject(error ?? new Error('no result'));
          const r: PgStatementResult = {
            command: result.command, rows: result.rows, rowCount: result.rowCount, fields: result.fields,
            suspended: this.#suspended, overBytes: this.#overBytes,
          };
          this.#results[keep] = r;
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
          // Only the kept statement's columns are described: the others' rows are read by position.
          if (s === this.#statements[this.#keep]) connection.describe({ type: 'P' });
          connection.execute({ rows: s.fetchRows ?? 0 });
        }
        connection.sync();
      } catch (error) {
        return error as Error;
      } finally {
        connection.stream.uncork?.();
      }
      return null;
    }

    handleDataRow(message: Message): void {
      if (this.#index !== this.#keep) {
        this.#rows.push({ ...(message.fields as Array<string | null>) });
        return;
      }
      const s = this.#statements[this.#keep]!;
      if (this.#overBytes || (s.keepRows !== undefined && this.#kept >= s.keepRows)) return;
      this.#kept += 1;
      if (s.maxBytes !== undefined) {
        for (const field of message.fields as Array<string | null>) this.#bytes += field === null ? 4 : Buffer.byteLength(field) + 8;
        if (this.#bytes > s.maxBytes) {
          this.#overBytes = true;
          return;
        }
      }
      base.handleDataRow!.call(this, message);
    }

    handleCommandComplete(message: Message, connection: unknown): void {
      if (this.#index === this.#keep) base.handleCommandComplete!.call(this, message, connection);
      else this.#results[this.#index] = { command: message.text?.split(' ')[0] ?? null, rows: this.#rows, rowCount: null };
      this.#next();
    }

    /** The server stopped the kept statement at `fetchRows`; the next Bind closes its portal. */
    handlePortalSuspended(): void {
      if (this.#index === this.#keep) this.#suspended = true;
      this.#next();
    }

    /** Tags the error with the statement it came from, for `failedStatement`. */
    handleError(error: Error, connection: unknown): void {
      if (error !== null && typeof error === 'object' && !failedAt.has(error)) failedAt.set(error, this.#index);
      base.handleError!.call(this, error, connection);
    }

    handleEmptyQuery(): void {
      if (this.#index !== this.#keep) this.#results[this.#index] = { command: null, rows: [], rowCount: null };
      this.#next();
    }

    #next(): void {
      this.#index += 1;
      this.#rows = [];
    }
  }
  implicitClasses.set(Base, Implicit);
  return Implicit;
}
