/**
 * The agent SQL firewall (issue 3, item 3): parses a statement with the real PostgreSQL parser
 * and accepts it only if it is one SELECT (or, in write mode, one INSERT/UPDATE/DELETE) whose
 * every node passes the checks in firewall-walk.ts.
 *
 * It is the second layer. The database holds on its own: the agent role's privileges, the
 * signed tenant context and RLS policies, the read-only transaction. The firewall turns what
 * those would reject (or could not see, like a statistics view) into a refusal the agent can act
 * on, and keeps the statements that reach Postgres to a shape we have reasoned about.
 * See docs/firewall.md.
 */
import { TenantfenceError, ErrorCodes } from '../errors.ts';
import { DEFAULT_ALLOWED_FUNCTIONS, EXPLAIN_OPTIONS, NEVER_ALLOWED_FUNCTIONS } from './allowlist.ts';
import { MAX_TOKENS, countTokens, loadParser, parse } from './firewall-parser.ts';
import { Refusal, walkStatement, type WalkSettings } from './firewall-walk.ts';
import { DEFAULT_MAX_VALUE_BYTES, statementBytes } from './firewall-size.ts';

export type FirewallMode = 'read' | 'write';

export interface FirewallOptions {
  mode: FirewallMode;
  /** Largest statement in UTF-8 bytes; checked before parsing. Default 65536. */
  maxBytes?: number;
  /** Deepest node nesting the walk accepts. Default 200. */
  maxDepth?: number;
  /** Extra pg_catalog function names to accept on top of `DEFAULT_ALLOWED_FUNCTIONS`. */
  allowFunctions?: readonly string[];
  /**
   * The database the statement will run on (from `loadServerProfile`): node types newer than its
   * version are refused, and only function names in `functions` are allowed. Without it the
   * firewall assumes a server that knows everything the parser (PostgreSQL 18) knows.
   */
  server?: FirewallServer;
  /**
   * The relations the agent may name (`firewallRelations` in server-profile.ts builds it from the
   * database). The gateway always passes it; without it only the name rules apply (catalogs and
   * system schemas are refused), which is what offline checks of a statement's shape need.
   */
  relations?: FirewallRelations;
  /**
   * The budget for the bytes one row of the statement can make the server hold, as bounded
   * statically in firewall-size.ts. Default 32 MiB.
   */
  maxValueBytes?: number;
}

export interface FirewallRelations {
  /** Relations the agent may read (and, in write mode, change), as `relationKey(schema, name)`. */
  readonly allowed: ReadonlySet<string>;
  /** What an unqualified name means under the pinned search_path, as a `relationKey`. */
  readonly resolve: ReadonlyMap<string, string>;
  /** Columns filled from a sequence (serial, identity), per relation: write mode refuses explicit values for them. */
  readonly sequenceColumns: ReadonlyMap<string, ReadonlySet<string>>;
  /** Types built on a refused type (xid, a catalog row type): unqualified names as resolved, and `relationKey`s. */
  readonly refusedTypes: ReadonlySet<string>;
}

/** One key per schema-qualified name; NUL cannot occur in a Postgres identifier. */
export function relationKey(schema: string, name: string): string {
  return `${schema}\u0000${name}`;
}

export interface FirewallServer {
  /** `server_version_num`, e.g. 150020. */
  readonly version: number;
  /** Function names the server has in pg_catalog or an extension (and nothing shadows); the allowlist is cut to them. */
  readonly functions: ReadonlySet<string>;
}

export type FirewallVerdict =
  | { ok: true; kind: 'select' | 'insert' | 'update' | 'delete'; fingerprint: string; paramCount: number }
  | { ok: false; reason: FirewallReason; message: string };

export type FirewallReason =
  | 'empty'
  | 'too_large'
  | 'too_deep'
  | 'parse_error'
  | 'multiple_statements'
  | 'statement_kind'
  | 'function'
  | 'relation'
  | 'locking_clause'
  | 'write_in_read_mode'
  | 'other';

export const DEFAULT_MAX_BYTES = 65536;
export const DEFAULT_MAX_DEPTH = 200;

/** Loads the parser (WASM) once. Await it before the first `checkSql`. */
export async function loadFirewall(): Promise<void> {
  await loadParser();
}

/** Checks one statement an agent wants to run. Synchronous once `loadFirewall()` has resolved. */
export function checkSql(sql: string, options: FirewallOptions): FirewallVerdict {
  const settings = settingsFor(options);
  const top = parseOne(sql, options);
  if ('reason' in top) return top;
  return walk(top.type, top.body, settings);
}

/** Statements longer than this are checked every time; at most this many verdicts are kept. */
const CACHED_CHARS = 8192;
const CACHED_VERDICTS = 1000;

/**
 * `checkSql` with its verdicts kept by statement text, for one options object that never changes
 * (the gateway replaces its own rather than editing it). Agents send the same statements again
 * and again, and parsing and walking one costs 20-40 µs of CPU per request. A verdict depends on
 * nothing but the text and the options, so a kept one is the one `checkSql` would give. Bounded:
 * 1,000 statements of up to 8,192 characters (about 16 MiB at worst), the oldest dropped first.
 */
export function cachedCheck(options: FirewallOptions): (sql: string) => FirewallVerdict {
  const verdicts = new Map<string, FirewallVerdict>();
  return (sql) => {
    const kept = verdicts.get(sql);
    if (kept) return kept;
    const verdict = Object.freeze(checkSql(sql, options));
    if (sql.length <= CACHED_CHARS) {
      if (verdicts.size >= CACHED_VERDICTS) verdicts.delete(verdicts.keys().next().value!);
      verdicts.set(sql, verdict);
    }
    return verdict;
  };
}

/**
 * Checks an EXPLAIN statement for the gateway's explain tool: plain EXPLAIN of a statement that
 * `checkSql` would accept, with only the FORMAT, VERBOSE and COSTS options, and COSTS OFF
 * required. ANALYZE would run the statement. Cost and row estimates come from table statistics
 * that cover every tenant's rows (the planner uses them under RLS for leakproof operators, so
 * `WHERE tenant_id = '<other tenant>'` estimates that tenant's row count): DESIGN.md's threat
 * model rules out such counts, and no database setting hides them, so here the firewall is the
 * only layer. The verdict's kind, fingerprint and paramCount are those of the explained statement.
 */
export function checkExplain(sql: string, options: FirewallOptions): FirewallVerdict {
  const settings = settingsFor(options);
  const top = parseOne(sql, options);
  if ('reason' in top) return top;
  if (top.type !== 'ExplainStmt') {
    return refuse('statement_kind', 'The explain tool takes an EXPLAIN statement: send EXPLAIN (COSTS OFF) followed by one SELECT.');
  }
  let costs = true;
  for (const item of asArray(top.body.options)) {
    const option = (item as Json).DefElem as Json | undefined;
    const name = typeof option?.defname === 'string' ? option.defname : '?';
    if (name === 'analyze') return refuse('statement_kind', 'EXPLAIN ANALYZE is refused because it runs the statement: use EXPLAIN (COSTS OFF) without ANALYZE.');
    if (!EXPLAIN_OPTIONS.includes(name)) return refuse('other', `EXPLAIN option ${name.toUpperCase()} is refused: only FORMAT, VERBOSE and COSTS OFF are allowed.`);
    if (name === 'costs') costs = explainBoolean(option!.arg);
  }
  if (costs) {
    return refuse('other', "EXPLAIN needs COSTS OFF, because estimates come from statistics over every tenant's rows: write EXPLAIN (COSTS OFF) followed by your query.");
  }
  const query = top.body.query as Json | undefined;
  const type = query ? Object.keys(query)[0] : undefined;
  if (!query || type === undefined) return refuse('parse_error', 'EXPLAIN needs a statement to explain: add one SELECT after EXPLAIN (COSTS OFF).');
  return walk(type, query[type], settings);
}

type Json = { readonly [key: string]: unknown };
type Refused = Extract<FirewallVerdict, { ok: false }>;

function refuse(reason: FirewallReason, message: string): Refused {
  return { ok: false, reason, message };
}

function walk(type: string, body: unknown, settings: WalkSettings): FirewallVerdict {
  try {
    const { kind, fingerprint, paramCount } = walkStatement(type, body, settings);
    const bytes = statementBytes(body);
    if (bytes > settings.maxValueBytes) {
      return refuse(
        'too_large',
        `The statement can build values of ${mebibytes(bytes)} in the server's memory (the limit is ${mebibytes(settings.maxValueBytes)}): nest fewer size-growing functions (replace, regexp_replace, format, concat_ws, array_to_string, encode, casts) and use shorter literals.`,
      );
    }
    return { ok: true, kind, fingerprint, paramCount };
  } catch (error) {
    if (error instanceof Refusal) return refuse(error.reason, error.message);
    throw error;
  }
}

/** Size checks, parse, and exactly one statement: the top statement's type and body. */
function parseOne(sql: string, options: FirewallOptions): Refused | { type: string; body: Json } {
  if (typeof sql !== 'string' || sql.trim() === '') return refuse('empty', 'The SQL is empty: send one SELECT statement.');
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  // A UTF-16 unit is 1 to 3 UTF-8 bytes, so most statements need no byte count at all.
  if (sql.length > maxBytes || (sql.length * 3 > maxBytes && Buffer.byteLength(sql, 'utf8') > maxBytes)) {
    return refuse('too_large', `The statement is larger than ${maxBytes} bytes: shorten it, or pass long lists as one array parameter (= ANY($1)).`);
  }
  // The parser reads a C string, so it would stop at a NUL that Postgres might not.
  if (sql.includes('\0')) return refuse('parse_error', 'The SQL contains a NUL character: remove it.');
  // Each token is at least one character, so only long statements can have too many.
  if (sql.length > MAX_TOKENS && countTokens(sql, MAX_TOKENS) > MAX_TOKENS) {
    return refuse('too_large', `The statement has more than ${MAX_TOKENS} tokens: split it, or pass long lists as one array parameter (= ANY($1)).`);
  }
  const parsed = parse(sql);
  if (!parsed.ok) {
    if (parsed.syntax) return refuse('parse_error', `The SQL does not parse (${parsed.message}, at character ${parsed.cursor + 1}): fix the syntax and send one PostgreSQL statement.`);
    return parsed.trapped
      ? refuse('too_deep', 'The statement is nested too deeply to parse: flatten it (fewer nested subqueries or chained operators).')
      : refuse('other', 'The SQL firewall is reloading its parser: send the statement again in a moment (if this persists, the gateway needs a restart).');
  }
  const statements = parsed.tree.stmts ?? [];
  if (statements.length === 0) return refuse('empty', 'The SQL holds no statement (only comments or semicolons): send one SELECT statement.');
  if (statements.length > 1) {
    return refuse('multiple_statements', `Send exactly one statement per request, not ${statements.length}: remove everything after the first semicolon; each request runs in its own transaction.`);
  }
  const stmt = statements[0]!.stmt as Json | undefined;
  const type = stmt ? Object.keys(stmt)[0] : undefined;
  if (!stmt || type === undefined) return refuse('empty', 'The SQL holds no statement: send one SELECT statement.');
  return { type, body: stmt[type] as Json };
}

const defaultFunctions: ReadonlySet<string> = new Set(DEFAULT_ALLOWED_FUNCTIONS);
const extendedFunctions = new WeakMap<readonly string[], ReadonlySet<string>>();

function settingsFor(options: FirewallOptions): WalkSettings {
  if (options.mode !== 'read' && options.mode !== 'write') {
    throw new TenantfenceError(ErrorCodes.USAGE, "Firewall mode must be 'read' or 'write'.");
  }
  const maxDepth = options.maxDepth ?? DEFAULT_MAX_DEPTH;
  for (const [name, value] of [['maxDepth', maxDepth], ['maxBytes', options.maxBytes ?? DEFAULT_MAX_BYTES]] as const) {
    if (!Number.isInteger(value) || value < 1) throw new TenantfenceError(ErrorCodes.USAGE, `Firewall option ${name} must be a positive integer.`);
  }
  const maxValueBytes = options.maxValueBytes ?? DEFAULT_MAX_VALUE_BYTES;
  if (!(maxValueBytes > 0)) throw new TenantfenceError(ErrorCodes.USAGE, 'Firewall option maxValueBytes must be a positive number.');
  const allowed = functionsFor(options.allowFunctions);
  const server = options.server;
  const common = { write: options.mode === 'write', maxDepth, maxValueBytes, allowed, relations: options.relations };
  if (!server) return { ...common, functions: allowed, serverVersion: PARSER_VERSION };
  return { ...common, functions: onServer(allowed, server), serverVersion: server.version };
}

function mebibytes(bytes: number): string {
  return Number.isFinite(bytes) ? `${Math.ceil(bytes / (1024 * 1024))} MiB` : 'unbounded size';
}

/** The grammar libpg-query parses (PostgreSQL 18). */
const PARSER_VERSION = 180000;
const onServerCache = new WeakMap<FirewallServer, WeakMap<ReadonlySet<string>, ReadonlySet<string>>>();

/** The allowlist cut to the names the server really has in pg_catalog, once per server and list. */
function onServer(allowed: ReadonlySet<string>, server: FirewallServer): ReadonlySet<string> {
  let perList = onServerCache.get(server);
  if (!perList) onServerCache.set(server, (perList = new WeakMap()));
  let set = perList.get(allowed);
  if (!set) perList.set(allowed, (set = new Set([...allowed].filter((name) => server.functions.has(name)))));
  return set;
}

/** The allowlist plus the gateway's extra names, built once per distinct array. */
function functionsFor(extra: readonly string[] | undefined): ReadonlySet<string> {
  if (!extra || extra.length === 0) return defaultFunctions;
  let set = extendedFunctions.get(extra);
  if (!set) {
    for (const name of extra) {
      if (NEVER_ALLOWED_FUNCTIONS.includes(name)) {
        throw new TenantfenceError(ErrorCodes.USAGE, `allowFunctions cannot include ${name}: it changes or reveals session state or reaches outside the database.`);
      }
      if (!/^[a-z_][a-z0-9_$]*$/.test(name)) {
        throw new TenantfenceError(ErrorCodes.USAGE, `allowFunctions takes bare lower-case pg_catalog names, not ${JSON.stringify(name)}.`);
      }
    }
    set = new Set([...DEFAULT_ALLOWED_FUNCTIONS, ...extra]);
    extendedFunctions.set(extra, set);
  }
  return set;
}

function asArray(value: unknown): readonly unknown[] {
  return Array.isArray(value) ? value : [];
}

/** How Postgres reads an EXPLAIN boolean (defGetBoolean): no value is true. */
function explainBoolean(arg: unknown): boolean {
  if (arg === undefined) return true;
  const value = arg as Json;
  if (value.Integer !== undefined) return ((value.Integer as Json).ival ?? 0) !== 0;
  if (value.Boolean !== undefined) return (value.Boolean as Json).boolval === true;
  const text = (value.String as Json | undefined)?.sval;
  return !(typeof text === 'string' && ['false', 'off'].includes(text.toLowerCase()));
}
