/**
 * postgres.js binding of the fence engine (src/context/fence.ts): `withTenant(sql, tenant, fn)`
 * reserves one connection (`sql.reserve()`), runs `fn(sql)` in a fenced transaction on it, and
 * hands the connection back reset, or ends it. postgres.js writes queries without waiting for
 * earlier answers, so BEGIN, the context and fn's first query travel together: N + 1 round trips
 * for N queries.
 *
 * Inside the callback `sql` behaves like the one `sql.begin()` gives: `sql.savepoint()` nests,
 * while `sql.begin()`, `sql.reserve()`, `sql.prepare()`, `sql.release()` and `sql.end()` are
 * refused (each would end the fence or leave it). After the callback the handle refuses all use.
 *
 * The pool must be created with `prepare: false`: the session reset drops every prepared
 * statement, and postgres.js keeps no count of its own that tenantfence could check against
 * (PgBouncer in transaction mode needs the same setting).
 */
import type { ReservedSql, Sql, TransactionSql } from 'postgres';
import { TenantfenceError, ErrorCodes } from '../errors.ts';
import { isConnectionError, runFenced, type FenceConnection, type FenceOptions, type FenceResult } from '../context/fence.ts';
import { Lease, tenantArguments } from './lease.ts';

/** A postgres.js instance: `postgres(url, { prepare: false })`. */
export type PostgresJsSql = Sql<any>;
export type FencedSql = TransactionSql<any>;
export type WithTenantOptions = FenceOptions;

export function withTenant<T>(sql: PostgresJsSql, tenant: string, fn: (sql: FencedSql) => Promise<T>, options?: WithTenantOptions): Promise<T>;
export function withTenant<T>(sql: PostgresJsSql, fn: (sql: FencedSql) => Promise<T>, options?: WithTenantOptions): Promise<T>;
export function withTenant<T>(
  sql: PostgresJsSql,
  tenantOrFn: string | ((sql: FencedSql) => Promise<T>),
  fnOrOptions?: ((sql: FencedSql) => Promise<T>) | WithTenantOptions,
  maybeOptions?: WithTenantOptions,
): Promise<T> {
  const [tenant, fn, options] = tenantArguments(tenantOrFn, fnOrOptions, maybeOptions);
  return runFenced(() => reserve(sql), tenant, async (c) => {
    const lease = new Lease();
    try {
      return await fn(fencedSql((c as PostgresJsFenceConnection).sql, lease));
    } finally {
      lease.end();
    }
  }, options);
}

/** Reserves a connection and adapts it; the engine releases it. */
export async function reserve(sql: PostgresJsSql): Promise<PostgresJsFenceConnection> {
  if (sql.options.prepare !== false) {
    throw new TenantfenceError(ErrorCodes.USAGE, 'Create the postgres.js instance with { prepare: false } to use it with tenantfence: the fence resets prepared statements after every transaction.');
  }
  return new PostgresJsFenceConnection(await sql.reserve());
}

export class PostgresJsFenceConnection implements FenceConnection {
  readonly sql: ReservedSql<any>;
  readonly pipelining = true;
  #failed = false;

  constructor(sql: ReservedSql<any>) {
    this.sql = sql;
  }

  async query(text: string, values: readonly unknown[] = []): Promise<FenceResult> {
    // Never the simple protocol for one statement: with parameters or without, it is one statement.
    return toResult(await this.#watch(this.sql.unsafe(text, values as any[], this.#options(false))));
  }

  async batch(text: string): Promise<FenceResult[]> {
    const statements = splitBatch(text);
    const r = await this.#watch(this.sql.unsafe(text, [], this.#options(true)));
    return regroup(statements, isResultList(r) ? r : [r as PostgresJsResult]);
  }

  failed(): boolean {
    return this.#failed;
  }

  release(destroy?: Error): void {
    // A closed connection is already back in postgres.js's closed queue, to be reopened on
    // demand; releasing it would put the dead socket into the open queue.
    if (this.#failed) return;
    if (!destroy) return this.sql.release();
    // postgres.js has no call that closes one reserved connection and leaves the pool whole
    // (ending it from either side left later reserve() calls waiting forever or failing in our
    // tests), so a connection the engine gives up on is scrubbed instead: out of any transaction,
    // then DISCARD ALL (settings, role, prepared statements, cursors, temp objects, locks,
    // listeners, sequences), and pooled again only if both succeed. If they fail, the
    // connection has failed too, and postgres.js closes and reopens it.
    void (async () => {
      await this.sql.unsafe('ROLLBACK', [], this.#options(false));
      await this.sql.unsafe('DISCARD ALL', [], this.#options(false));
    })().then(() => this.sql.release(), () => undefined);
  }

  /** Extended protocol for one statement, or the simple protocol for a batch; never prepared. */
  #options(simple: boolean): object {
    return { prepare: false, simple };
  }

  async #watch<R>(query: PromiseLike<R>): Promise<R> {
    try {
      return await query;
    } catch (error) {
      if (closed(error)) this.#failed = true;
      throw error;
    }
  }
}

/** postgres.js reports a lost connection with its own codes (CONNECTION_…), or as the engine knows it. */
function closed(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  return (typeof code === 'string' && /^CONNECTION_/.test(code)) || isConnectionError(error);
}

interface PostgresJsResult extends Array<Record<string, unknown>> {
  command?: string;
  count?: number | null;
}

function isResultList(r: unknown): r is PostgresJsResult[] {
  return Array.isArray(r) && r.length > 0 && Array.isArray(r[0]);
}

/**
 * The engine's batches (COMMIT or ROLLBACK and the session reset) are its own SQL, without quotes,
 * dollar quotes or comments, so `;` separates their statements. Anything else is refused rather
 * than split wrongly.
 */
function splitBatch(text: string): string[] {
  if (/['"$]|--|\/\*/.test(text)) {
    throw new TenantfenceError(ErrorCodes.INTERNAL, 'The postgres.js binding got a batch it cannot split; report this as a tenantfence bug.');
  }
  return text.split(';').map((s) => s.trim()).filter((s) => s.length > 0);
}

/**
 * postgres.js starts a new result only when a statement describes rows, so a statement without rows
 * (COMMIT, ROLLBACK) shares the result of the one before it, which ends with its command tag. One
 * result per statement is rebuilt from that: a statement starting with SELECT owns the rows, the
 * last one of a group carries the group's command tag.
 */
function regroup(statements: string[], results: PostgresJsResult[]): FenceResult[] {
  const out: FenceResult[] = [];
  let group = -1;
  for (let i = 0; i < statements.length; i++) {
    const rowsFirst = /^select\b/i.test(statements[i]!);
    if (rowsFirst || group < 0) group++;
    const result = results[group] ?? ([] as PostgresJsResult);
    const lastOfGroup = i + 1 === statements.length || /^select\b/i.test(statements[i + 1]!);
    if (rowsFirst && !lastOfGroup) out.push({ command: 'SELECT', rows: [...result], rowCount: result.length });
    else out.push(toResult(result));
  }
  return out;
}

function toResult(r: unknown): FenceResult {
  const rows = r as PostgresJsResult;
  return { command: rows.command ? rows.command.toUpperCase() : null, rows: [...rows], rowCount: rows.count ?? null };
}

let savepoints = 0;

/** The callback's `sql`: the reserved connection, with nesting by savepoint and the exits closed. */
export function fencedSql(reserved: ReservedSql<any>, lease: Lease): FencedSql {
  const refuse = (what: string) => () => {
    throw new TenantfenceError(ErrorCodes.USAGE, `sql.${what}() cannot be used inside withTenant: the fence is already a transaction; nest with sql.savepoint().`);
  };
  const savepoint = async (nameOrFn: string | ((sql: FencedSql) => unknown), maybeFn?: (sql: FencedSql) => unknown) => {
    const fn = typeof nameOrFn === 'function' ? nameOrFn : maybeFn!;
    // The name never comes from the caller's text: a generated identifier needs no quoting.
    const name = `tf_sp_${++savepoints}`;
    await reserved.unsafe(`SAVEPOINT ${name}`);
    try {
      const result = await fn(handle);
      await reserved.unsafe(`RELEASE SAVEPOINT ${name}`);
      return result;
    } catch (error) {
      await reserved.unsafe(`ROLLBACK TO SAVEPOINT ${name}`);
      throw error;
    }
  };
  const overrides: Record<PropertyKey, unknown> = {
    savepoint,
    begin: refuse('begin'),
    reserve: refuse('reserve'),
    prepare: refuse('prepare'),
    release: refuse('release'),
    end: refuse('end'),
  };
  const handle: FencedSql = new Proxy(reserved as unknown as FencedSql, {
    apply(target, self, args) {
      lease.check();
      return Reflect.apply(target as unknown as (...a: unknown[]) => unknown, self, args);
    },
    get(target, property, receiver) {
      lease.check();
      return Object.hasOwn(overrides, property) ? overrides[property] : Reflect.get(target, property, receiver);
    },
  });
  return handle;
}
