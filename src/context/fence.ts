/**
 * The fence engine: the one fenced transaction that `withTenant`, `tenantQuery`, the gateway and
 * every driver binding run on (DESIGN.md, "context/"). A binding only adapts its driver to
 * `FenceConnection`; signing, the context, the pinned settings, ending the transaction, the
 * session reset and the decision to pool or destroy the connection live here, once.
 *
 * Two shapes, and their round trips (docs/context.md, "Round trips"):
 * - `runFenced` (a callback of N queries): `BEGIN …; SELECT tenantfence.open_fence(…)` opens the
 *   fence; on a pipelining connection it travels with the callback's first query. The end is one message:
 *   `SELECT tenantfence.fence_intact(…); COMMIT; SELECT tenantfence.reset_session(…)`.
 *   BEGIN and the setup are one message with one Sync where the binding can send an implicit
 *   transaction: N + 1 round trips pipelined (that message carries fn's first query too), N + 2 not.
 * - `fencedStatement` (one statement): the context, the statement and the reset as ONE implicit
 *   transaction (extended protocol, one Sync, no BEGIN/COMMIT): one round trip. A binding without
 *   that capability falls back to `runFenced` with one query.
 *
 * A fence is broken when SQL inside it ends the transaction (COMMIT, ROLLBACK, then more SQL
 * outside the fence; through PgBouncer in transaction mode that later SQL may land on another
 * server connection). The engine detects it from the server's transaction status where the driver
 * reports it and, in every case, with `tenantfence.fence_intact()`, which compares the current
 * transaction's start time with the one read when the fence opened. A broken fence fails the call
 * (`TF_FENCE_BROKEN`) and destroys the connection; nothing after the break is committed by the engine.
 */
import { TenantfenceError, ErrorCodes, sqlstateOf } from '../errors.ts';
import { assertTenantId } from './tenant-id.ts';
import { getTenant, runWithTenant } from './storage.ts';
import { CONTEXT_SETTING, DEFAULT_TTL_SECONDS, parseSecret, signContext, type SigningKey } from './token.ts';
import { abortBatch, ASYNC_COMMIT, endBatch, OPEN_FUNCTION, PINNED_SETTINGS, resetCall, resetIsClean } from '../sql/session.ts';
import { literal } from '../sql/quote.ts';

/** One statement's outcome, driver-neutral. */
export interface FenceResult<R = Record<string, unknown>> {
  readonly command: string | null;
  readonly rows: R[];
  readonly rowCount: number | null;
}

/** One statement to send: SQL text with bind parameters, or a driver's own statement object. */
export interface FenceStatement {
  readonly text: string;
  readonly values?: readonly unknown[];
}

/** A checked-out connection as the engine drives it; each binding implements it for its driver. */
export interface FenceConnection {
  /** The driver writes queued statements before the first answer comes back. */
  readonly pipelining: boolean;
  /** One statement over the extended protocol, with bind parameters. */
  query(text: string, values?: readonly unknown[]): Promise<FenceResult>;
  /** Several statements in one simple-protocol message (no parameters); one result each. */
  batch(text: string): Promise<FenceResult[]>;
  /**
   * Optional: the statements as ONE implicit transaction in one round trip (Parse/Bind/Execute
   * for each, then a single Sync). Resolves to one result per statement, or rejects with the
   * first error (the statements after it were skipped and the transaction rolled back).
   * `statement` may be a driver-specific object the binding knows how to send (the gateway's
   * row-capped query); the engine passes it through untouched. `keep` (default 1) is the index
   * of the caller's statement, whose rows come back as the driver parses them; the others' rows
   * may come back as raw text keyed by position.
   */
  implicit?(statements: readonly unknown[], keep?: number): Promise<FenceResult[]>;
  /** Optional: the transaction status of the last ReadyForQuery: idle, in a block, or failed. */
  transactionStatus?(): 'I' | 'T' | 'E' | undefined;
  /**
   * Optional: how many prepared statements the driver itself made on this connection. Undefined
   * (or absent) means none, and the reset drops every prepared statement.
   */
  driverStatements?(): number | undefined;
  /** Optional: the connection itself has failed (socket error or end, backend gone). */
  failed?(): boolean;
  /** Hands the connection back; with an Error it is destroyed, never pooled again. */
  release(destroy?: Error): void;
}

export interface FenceOptions {
  /** The signing key; defaults to `TENANTFENCE_SECRET` from the environment. */
  readonly key?: SigningKey;
  /** Token lifetime in seconds (default 300): it only has to outlive the transaction. */
  readonly ttlSeconds?: number;
  /** `BEGIN READ ONLY` (and, for a single statement, a read-only implicit transaction). */
  readonly readOnly?: boolean;
  /** End with ROLLBACK even when the work succeeded (the gateway's reads). */
  readonly rollback?: boolean;
  /** Strict mode: bind the token to this transaction's id (costs one round trip). */
  readonly bindToTransaction?: boolean;
  /** Per-transaction timeouts in ms (0 turns one off). Defaults: 30 s, 10 s, 60 s. */
  readonly statementTimeoutMs?: number;
  readonly lockTimeoutMs?: number;
  readonly idleInTransactionTimeoutMs?: number;
  /**
   * Settings pinned for the transaction with `set_config(name, value, true)`, over the defaults in
   * `PINNED_SETTINGS`, so that a default someone set on the role (`ALTER ROLE … SET`) cannot change
   * how the fenced SQL behaves.
   */
  readonly settings?: Readonly<Record<string, string>>;
  /**
   * A statement of the engine's caller run inside the fence before the caller's statement, in
   * the same transaction (the gateway's audit record for a read: the two commit together or not
   * at all). With `readOnly` the transaction may write while the prelude runs and turns read-only
   * right after it; PostgreSQL refuses to turn it back once a query has run, so nothing after the
   * prelude can write.
   */
  readonly prelude?: FenceStatement;
  /**
   * Commit with `synchronous_commit = off`: for a transaction whose only write a database crash
   * may lose (the gateway's read with its audit record). Pinned with the other settings, and set
   * again after the reset of a one-statement transaction, which runs before its commit.
   */
  readonly asyncCommit?: boolean;
}

export { PINNED_SETTINGS };

const DEFAULT_TIMEOUTS = { statement: 30_000, lock: 10_000, idle: 60_000 };
/** Read-only from here on: allowed at any point of a transaction (the opposite only before its first query). */
const READ_ONLY_CALL = "pg_catalog.set_config('transaction_read_only', 'on', true)";
const READ_ONLY: FenceStatement = { text: `SELECT ${READ_ONLY_CALL}` };
const SETTING_NAME = /^[A-Za-z_][A-Za-z0-9_.]{0,62}$/;

let envKey: SigningKey | undefined;
function defaultKey(): SigningKey {
  envKey ??= parseSecret(process.env.TENANTFENCE_SECRET);
  return envKey;
}

/** The tenant given, or the request's (`runWithTenant`, the HTTP middleware); TF_NO_TENANT when neither. */
export function resolveTenant(tenant: string | undefined): string {
  const id = tenant ?? getTenant();
  assertTenantId(id);
  return id;
}

/**
 * Checks out a connection, runs `fn` inside the fenced transaction for `tenant` (and inside
 * `runWithTenant`, so `getTenant()` answers), ends it, resets the session, and releases or
 * destroys the connection. `fn`'s error is rethrown as it is, after the rollback.
 */
export async function runFenced<T>(
  acquire: () => Promise<FenceConnection>,
  tenant: string | undefined,
  fn: (connection: FenceConnection) => Promise<T>,
  options: FenceOptions = {},
): Promise<T> {
  return fenced(acquire, tenant, options, (fence, _c, plan) => runWithTenant(plan.tenant, () => fence.run(fn)));
}

/**
 * One statement for `tenant` in one round trip when the binding can send an implicit transaction;
 * otherwise (or in strict mode, which reads the transaction id first) the callback shape with that
 * one statement. Returns the statement's result.
 */
export async function fencedStatement(
  acquire: () => Promise<FenceConnection>,
  tenant: string | undefined,
  statement: FenceStatement | object,
  options: FenceOptions = {},
): Promise<FenceResult> {
  return fenced(acquire, tenant, options, (fence, c, plan) => {
    if (c.implicit && c.transactionStatus && !plan.bindToTransaction) return fence.single(statement);
    const { text, values } = statement as FenceStatement;
    return fence.run(async (connection) => {
      for (const p of plan.prelude) await connection.query(p.text, p.values);
      return connection.query(text, values);
    });
  });
}

/**
 * Resolves the tenant, checks a connection out, runs `body`, releases or destroys. (Only a
 * callback runs inside `runWithTenant`: entering an AsyncLocalStorage scope costs a single
 * statement, which runs no caller code, client CPU for nothing.)
 */
async function fenced<T>(
  acquire: () => Promise<FenceConnection>,
  tenant: string | undefined,
  options: FenceOptions,
  body: (fence: Fence, connection: FenceConnection, plan: Plan) => Promise<T>,
): Promise<T> {
  const id = resolveTenant(tenant);
  const plan = new Plan(id, options);
  const connection = await checkout(acquire);
  const fence = new Fence(connection, plan);
  try {
    return await body(fence, connection, plan);
  } finally {
    connection.release(fence.discard);
  }
}

async function checkout(acquire: () => Promise<FenceConnection>): Promise<FenceConnection> {
  try {
    return await acquire();
  } catch (error) {
    throw connectionError(error, 'No database connection could be opened for the fenced transaction; check the pool and the server, then retry.');
  }
}

/** The SQL a set of options sends, built once per distinct options (they are few in any app). */
interface Shape {
  readonly setupText: string;
  readonly settingValues: readonly string[];
  readonly begin: string;
}

const shapes = new Map<string, Shape>();

function shapeFor(options: FenceOptions): Shape {
  const id = `${options.statementTimeoutMs}|${options.lockTimeoutMs}|${options.idleInTransactionTimeoutMs}|${options.readOnly === true}|${options.settings ? JSON.stringify(options.settings) : ''}`;
  let shape = shapes.get(id);
  if (!shape) {
    shape = buildShape(options);
    if (shapes.size < 1000) shapes.set(id, shape);
  }
  return shape;
}

function buildShape(options: FenceOptions): Shape {
  const values = [
    timeout(options.statementTimeoutMs, DEFAULT_TIMEOUTS.statement, 'statementTimeoutMs'),
    timeout(options.lockTimeoutMs, DEFAULT_TIMEOUTS.lock, 'lockTimeoutMs'),
    timeout(options.idleInTransactionTimeoutMs, DEFAULT_TIMEOUTS.idle, 'idleInTransactionTimeoutMs'),
  ];
  // The context, the timeouts and PINNED_SETTINGS in one call (src/sql/session.ts); settings the
  // caller adds go after it, so they win over the pinned defaults.
  const calls = [`${OPEN_FUNCTION}($1, $2, $3, $4) AS opened`];
  for (const [name, value] of Object.entries(options.settings ?? {})) {
    if (!SETTING_NAME.test(name) || name.toLowerCase() === CONTEXT_SETTING || typeof value !== 'string') {
      throw new TenantfenceError(ErrorCodes.USAGE, 'A pinned setting needs a plain setting name (not the tenant context) and a string value.');
    }
    values.push(value);
    calls.push(`pg_catalog.set_config(${literal(name)}, $${values.length + 1}, true)`);
  }
  // A single statement has no BEGIN: its implicit transaction turns read-only here, which is
  // allowed at any point (only the other direction must come before the first query).
  if (options.readOnly) calls.push(READ_ONLY_CALL);
  return {
    setupText: `SELECT ${calls.join(', ')}`,
    settingValues: values,
    begin: `BEGIN ISOLATION LEVEL READ COMMITTED ${options.readOnly ? 'READ ONLY' : 'READ WRITE'}`,
  };
}

/**
 * Signed tokens, reused for a tenant while at least half their lifetime remains: signing costs a
 * few µs of client CPU per request, and a token bound to no transaction may serve several (strict
 * mode signs one per transaction). Bounded: cleared when it passes 10,000 tenants.
 */
const tokens = new WeakMap<SigningKey, Map<string, { readonly token: string; readonly renewAt: number }>>();

function tokenFor(key: SigningKey, tenant: string, ttlSeconds: number): string {
  let byTenant = tokens.get(key);
  if (!byTenant) tokens.set(key, (byTenant = new Map()));
  const id = `${ttlSeconds}|${tenant}`;
  const now = Date.now();
  const cached = byTenant.get(id);
  if (cached && cached.renewAt > now) return cached.token;
  const token = signContext(key, tenant, { ttlSeconds, now: () => now });
  if (byTenant.size >= 10_000) byTenant.clear();
  byTenant.set(id, { token, renewAt: now + (ttlSeconds * 1000) / 2 });
  return token;
}

/** What one fenced transaction will send: the token, the settings, the ends. */
class Plan {
  /** Opens the fence (a callback's, or a single statement's); also reads the transaction's start for `fence_intact`. */
  readonly setup: FenceStatement;
  readonly begin: string;
  readonly bindToTransaction: boolean;
  readonly rollback: boolean;
  readonly readOnly: boolean;
  /** Run after the setup, before the caller's statement: `FenceOptions.prelude`, then read-only when asked. */
  readonly prelude: readonly FenceStatement[];
  readonly asyncCommit: boolean;
  readonly tenant: string;
  readonly #key: SigningKey;
  readonly #ttl: number;

  constructor(tenant: string, options: FenceOptions) {
    this.#key = options.key ?? defaultKey();
    this.tenant = tenant;
    this.#ttl = options.ttlSeconds ?? DEFAULT_TTL_SECONDS;
    this.bindToTransaction = options.bindToTransaction === true;
    this.rollback = options.rollback === true;
    this.readOnly = options.readOnly === true;
    // With a prelude, a read-only transaction turns read-only after it (READ_ONLY), not at its start.
    const writesFirst = options.prelude !== undefined && this.readOnly;
    this.asyncCommit = options.asyncCommit === true;
    const shape = shapeFor(writesFirst || this.asyncCommit ? {
      ...options,
      ...(writesFirst ? { readOnly: false } : {}),
      ...(this.asyncCommit ? { settings: { ...options.settings, ...ASYNC_COMMIT } } : {}),
    } : options);
    this.prelude = options.prelude ? (writesFirst ? [options.prelude, READ_ONLY] : [options.prelude]) : [];
    this.begin = shape.begin;
    // Strict mode signs its token once it knows the transaction id (boundSetup).
    const values = [this.bindToTransaction ? '' : tokenFor(this.#key, tenant, this.#ttl), ...shape.settingValues];
    this.setup = { text: shape.setupText, values };
  }

  /** The setup with a token bound to `xid` (strict mode). */
  boundSetup(xid: string): FenceStatement {
    const token = signContext(this.#key, this.tenant, { ttlSeconds: this.#ttl, xid });
    return { text: this.setup.text, values: [token, ...this.setup.values!.slice(1)] };
  }
}

function timeout(value: number | undefined, fallback: number, name: string): string {
  const ms = value ?? fallback;
  if (!Number.isInteger(ms) || ms < 0 || ms > 2_147_483_647) {
    throw new TenantfenceError(ErrorCodes.USAGE, `${name} must be a whole number of milliseconds (0 turns it off).`);
  }
  return String(ms);
}

/** One fenced transaction on one connection; `discard` says whether the connection must go. */
class Fence {
  discard: Error | undefined;
  readonly #c: FenceConnection;
  readonly #plan: Plan;

  constructor(connection: FenceConnection, plan: Plan) {
    this.#c = connection;
    this.#plan = plan;
  }

  async run<T>(fn: (connection: FenceConnection) => Promise<T>): Promise<T> {
    const c = this.#c;
    let opened: string;
    let result: T;
    try {
      if (this.#plan.bindToTransaction) {
        await c.query(this.#plan.begin);
        const { rows } = await c.query('SELECT pg_catalog.pg_current_xact_id()::pg_catalog.text AS xid');
        opened = openedAt(await c.query(this.#plan.setup.text, this.#plan.boundSetup(String(rows[0]!.xid)).values));
        result = await fn(c);
      } else if (c.pipelining) {
        // BEGIN, the setup and fn's first query go out in one write. Both settle before the
        // transaction ends, so fn never outlives it on this connection.
        const [ready, done] = await Promise.allSettled([this.#open(), fn(c)]);
        if (ready.status === 'rejected') throw ready.reason;
        opened = ready.value;
        if (done.status === 'rejected') throw done.reason;
        result = done.value;
      } else {
        opened = await this.#open();
        result = await fn(c);
      }
    } catch (error) {
      await this.#abort(error);
      throw this.#connectionOr(error);
    }
    await this.#end(opened);
    return result;
  }

  /**
   * BEGIN and the setup; resolves to the transaction's start. Where the binding can send an
   * implicit transaction, both are one query with one Sync (BEGIN inside it turns it into the
   * transaction block fn's queries run in): one round trip instead of two without pipelining,
   * and one driver query instead of two with it.
   */
  async #open(): Promise<string> {
    const c = this.#c;
    const { begin, setup } = this.#plan;
    if (c.implicit) return openedAt((await c.implicit([{ text: begin }, setup]))[1]!);
    if (c.pipelining) return openedAt((await Promise.all([c.query(begin), c.query(setup.text, setup.values)]))[1]);
    await c.query(begin);
    return openedAt(await c.query(setup.text, setup.values));
  }

  /** Ends the transaction: COMMIT (or ROLLBACK) and the reset in one message. */
  async #end(opened: string): Promise<void> {
    const c = this.#c;
    const status = c.transactionStatus?.();
    if (status === 'I') return this.#broken();
    if (status === 'E') {
      await this.#abort(undefined);
      throw rolledBack();
    }
    const finish = this.#plan.rollback ? 'ROLLBACK' : 'COMMIT';
    let results: FenceResult[];
    try {
      results = await c.batch(endBatch(finish, opened, !c.driverStatements?.()));
    } catch (error) {
      if (sqlstateOf(error) === '25000') return this.#broken(error);
      if (sqlstateOf(error) === '25P02') {
        // A statement failed and fn carried on: the transaction can only roll back.
        await this.#abort(undefined);
        throw rolledBack();
      }
      this.discard = asError(error);
      throw this.#connectionOr(error);
    }
    this.#checkReset(results[3]);
    if (results[2]?.command !== finish) {
      // COMMIT of a failed transaction answers ROLLBACK without an error; never report success.
      throw rolledBack();
    }
  }

  /** Rolls back and resets after an error; if even that fails, the connection goes. */
  async #abort(pending: unknown): Promise<void> {
    if (this.discard) return;
    if (this.#dead(pending)) {
      this.discard = asError(pending);
      return;
    }
    try {
      const results = await this.#c.batch(abortBatch(true, !this.#c.driverStatements?.()));
      this.#checkReset(results[results.length - 1]);
    } catch (error) {
      this.discard = asError(error);
    }
  }

  #checkReset(result: FenceResult | undefined): void {
    // The reset's one column: named `kept` in a batch, by position from an implicit transaction.
    const row = result?.rows[0];
    if (!resetIsClean(row === undefined ? undefined : Object.values(row)[0], this.#c.driverStatements?.())) {
      this.discard = new Error('SQL in the fence made or dropped prepared statements; the connection is not pooled again');
    }
  }

  #broken(cause?: unknown): never {
    this.discard = new Error('the fenced transaction was ended by SQL inside it');
    throw new TenantfenceError(
      ErrorCodes.FENCE_BROKEN,
      'SQL inside the fence ended its transaction (COMMIT or ROLLBACK); the work after it ran without a tenant and the connection was discarded. Remove transaction control from the callback, or use the ORM binding, which turns nested transactions into savepoints.',
      cause === undefined ? undefined : { cause },
    );
  }

  /**
   * Connection-level failures become TF_CONNECTION (and the connection goes); a database set up by
   * an earlier tenantfence (no `open_fence` yet) becomes TF_NOT_INITIALISED; others pass through.
   */
  #connectionOr(error: unknown): unknown {
    if (sqlstateOf(error) === '42883' && /tenantfence\.(open_fence|reset_session|fence_intact)/.test(String((error as Error).message))) {
      return new TenantfenceError(ErrorCodes.NOT_INITIALISED, 'This database lacks the functions of this tenantfence version; run `tenantfence init` again (it is idempotent) to upgrade it.', { cause: error });
    }
    if (!this.#dead(error)) return error;
    this.discard ??= asError(error);
    return connectionError(error, 'The database connection failed during the fenced transaction and was discarded; nothing of it was committed unless its COMMIT had already completed. Retry the request.');
  }

  #dead(error: unknown): boolean {
    return error !== undefined && (isConnectionError(error) || this.#c.failed?.() === true);
  }

  /** The context, the statement and the reset: one implicit transaction, one round trip. */
  async single(statement: FenceStatement | object): Promise<FenceResult> {
    const c = this.#c;
    const drop = !c.driverStatements?.();
    const kept = 1 + this.#plan.prelude.length;
    let results: FenceResult[];
    try {
      results = await c.implicit!([this.#plan.setup, ...this.#plan.prelude, statement, { text: resetCall(drop, this.#plan.asyncCommit) }], kept);
    } catch (error) {
      // The implicit transaction rolled back and the reset was skipped: run it on its own.
      await this.#reset(error);
      throw this.#connectionOr(error);
    }
    // A statement that opened a transaction block (BEGIN) leaves the session inside it.
    if (c.transactionStatus!() !== 'I') return this.#broken();
    this.#checkReset(results[kept + 1]);
    return results[kept]!;
  }

  async #reset(pending: unknown): Promise<void> {
    if (this.#dead(pending)) {
      this.discard = asError(pending);
      return;
    }
    try {
      const results = await this.#c.batch(abortBatch(this.#c.transactionStatus?.() !== 'I', !this.#c.driverStatements?.()));
      this.#checkReset(results[results.length - 1]);
    } catch (error) {
      this.discard = asError(error);
    }
  }
}

function openedAt(result: FenceResult): string {
  const opened = String(result.rows[0]?.opened ?? '');
  if (!/^-?[0-9]{1,20}$/.test(opened)) throw new TenantfenceError(ErrorCodes.INTERNAL, 'The fence could not read its transaction start; report this as a tenantfence bug.');
  return opened;
}

function rolledBack(): TenantfenceError {
  return new TenantfenceError(
    ErrorCodes.DATABASE,
    'The transaction was rolled back because a statement in it failed; handle the error inside the callback or let it propagate.',
  );
}

/**
 * The server says the connection is gone: a connection-exception class (08…) or the backend
 * ended (57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now), or the socket
 * failed (ECONNRESET, EPIPE, …). The binding's `failed()` covers what carries no code.
 */
export function isConnectionError(error: unknown): boolean {
  if (error instanceof TenantfenceError) return false;
  const state = sqlstateOf(error);
  if (state) return state.startsWith('08') || state === '57P01' || state === '57P02' || state === '57P03';
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && /^E[A-Z]+$/.test(code);
}

function connectionError(error: unknown, message: string): TenantfenceError {
  if (error instanceof TenantfenceError) return error;
  return new TenantfenceError(ErrorCodes.CONNECTION, message, { cause: error });
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
