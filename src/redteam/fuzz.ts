/**
 * Fuzzing the firewall (issue 10, item 6): statements from a small SQL grammar that aims at what
 * the firewall guards (catalogs, system columns, refused functions and types, context switches,
 * tenant B's id, write targets), and mutations of a seed corpus (bytes, tokens, splices), from a
 * seeded PRNG so a run can be replayed. For every input: `checkSql` must return a verdict (no
 * throw: a crash) within `HANG_MS` (else a hang); and every accepted input is run under the fence,
 * as the agent role, inside a transaction for tenant A that is rolled back, and must show none of
 * tenant B's marker strings in its rows, its error or its notices (a leak).
 *
 * `test/redteam/fuzz.test.ts` runs a short seeded pass; `scripts/fuzz-firewall.ts` the long one.
 */
import type pg from 'pg';
import { PgFenceConnection } from '../adapters/pg.ts';
import { runFenced } from '../context/fence.ts';
import { checkSql, type FirewallOptions, type FirewallVerdict } from '../gateway/firewall.ts';
import { leakedMarkers, TENANT_A, TENANT_B, type Fixture } from './fixture.ts';

export const HANG_MS = 1000;

/** mulberry32: small, fast, and the same sequence for the same seed everywhere. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Rand = () => number;
const pick = <T>(r: Rand, list: readonly T[]): T => list[Math.floor(r() * list.length)]!;

const B = `'${TENANT_B}'`;
const RELATIONS = [
  'conversations', 'public.conversations', 'conversations c', 'notes', 'public.notes', 'pg_stat_statements', 'public.pg_stat_statements',
  'pg_class', 'pg_catalog.pg_stat_activity', 'pg_stats', 'information_schema.tables', 'tenantfence.keys', 'tenantfence.audit_log',
  'conversations_id_seq', '"PG_CLASS"', 'U&"pg\\005fclass"', 'ONLY conversations', 'conversations TABLESAMPLE SYSTEM (50)',
];
const COLUMNS = ['id', 'tenant_id', 'agent_id', 'transcript', 'created_at', 'ctid', 'xmin', 'tableoid', 'c.*', '*', '(c).xmin', 'body', 'query'];
const FUNCTIONS = [
  'lower', 'upper', 'length', 'md5', 'replace', 'concat', 'format', 'count', 'string_agg', 'array_agg', 'jsonb_agg', 'to_jsonb',
  'row_to_json', 'coalesce', 'age', 'set_config', 'current_setting', 'pg_sleep', 'nextval', 'lastval', 'txid_current',
  'pg_backend_pid', 'version', 'pg_read_file', 'tenantfence.current_tenant', 'query_to_xml', 'pg_terminate_backend',
  'lo_get', 'dblink', 'has_table_privilege', 'pg_relation_size', 'to_regclass', 'xmin', 'generate_series', 'json_populate_record',
  'pg_catalog.lower', 'public.lower', '"lower"', 'regexp_replace', 'encode', 'pg_typeof', 'jsonb_pretty',
];
const TYPES = ['int', 'text', 'uuid', 'xid', 'tid', 'regclass', 'regtype', 'pg_class', 'pg_catalog.pg_database', 'tenantfence.token', 'jsonb', 'bytea', 'text[]', 'xid8'];
const LITERALS = ["'x'", B, "'aaaaaaaa'", '1', '0', 'NULL', 'true', "'{}'::jsonb", '$1', "E'\\\\'", "$$q$$", "'tenantfence.context'", `'${'a'.repeat(8)}'`];
const PREFIXES = ['', 'EXPLAIN ', 'SET LOCAL ', 'COMMIT; ', 'BEGIN; ', '/* */ ', '-- x\n', 'SELECT 1; '];

function expr(r: Rand, depth: number): string {
  if (depth <= 0) return r() < 0.5 ? pick(r, LITERALS) : pick(r, COLUMNS.filter((c) => c !== '*' && c !== 'c.*'));
  switch (Math.floor(r() * 9)) {
    case 0: {
      const args = Array.from({ length: Math.floor(r() * 3) + 1 }, () => expr(r, depth - 1));
      return `${pick(r, FUNCTIONS)}(${args.join(', ')})`;
    }
    case 1:
      return `${expr(r, depth - 1)}::${pick(r, TYPES)}`;
    case 2:
      return `(${select(r, depth - 1)})`;
    case 3:
      return `${expr(r, depth - 1)} ${pick(r, ['=', '||', '+', '<>', 'LIKE', '@>', '->>'])} ${expr(r, depth - 1)}`;
    case 4:
      return `CASE WHEN ${expr(r, depth - 1)} THEN ${expr(r, depth - 1)} ELSE ${expr(r, depth - 1)} END`;
    case 5:
      return `EXISTS (${select(r, depth - 1)})`;
    case 6:
      return `(${expr(r, depth - 1)}).${pick(r, ['xmin', 'relfrozenxid', 'x', 'id', 'transcript'])}`;
    case 7:
      return `ARRAY[${expr(r, depth - 1)}]`;
    default:
      return pick(r, COLUMNS);
  }
}

function select(r: Rand, depth: number): string {
  const targets = Array.from({ length: Math.floor(r() * 3) + 1 }, () => expr(r, depth - 1)).join(', ');
  let from = pick(r, RELATIONS);
  if (r() < 0.3) from += ` JOIN ${pick(r, RELATIONS)} ON ${expr(r, 0)}`;
  let sql = `SELECT ${targets} FROM ${from}`;
  if (r() < 0.6) sql += ` WHERE ${r() < 0.4 ? `tenant_id = ${B}` : expr(r, depth - 1)}`;
  if (r() < 0.15) sql += ` UNION ALL SELECT ${expr(r, 0)}`;
  if (r() < 0.1) sql += ' FOR UPDATE';
  if (r() < 0.2) sql = `WITH ${pick(r, ['x', 'pg_class', 'notes', 'conversations'])} AS (SELECT * FROM ${pick(r, RELATIONS)}) ${sql}`;
  return sql;
}

function write(r: Rand, depth: number): string {
  const target = pick(r, ['conversations', 'public.conversations', 'notes', 'tenantfence.audit_log', 'pg_class']);
  switch (Math.floor(r() * 4)) {
    case 0:
      return `INSERT INTO ${target} (${pick(r, ['tenant_id, agent_id, transcript', 'id, tenant_id, agent_id', 'tenant_id, transcript'])}) VALUES (${pick(r, [B, '$1', "'aaaaaaaa-0000-4000-8000-00000000000a'"])}, gen_random_uuid(), ${expr(r, depth - 1)})${r() < 0.5 ? ' RETURNING *' : ''}`;
    case 1:
      return `UPDATE ${target} SET ${pick(r, ['transcript', 'tenant_id', 'id'])} = ${expr(r, depth - 1)} WHERE ${expr(r, depth - 1)}${r() < 0.5 ? ' RETURNING *' : ''}`;
    case 2:
      return `DELETE FROM ${target} WHERE ${expr(r, depth - 1)}${r() < 0.5 ? ' RETURNING transcript' : ''}`;
    default:
      return `INSERT INTO ${target} SELECT * FROM ${pick(r, RELATIONS)} ON CONFLICT DO NOTHING`;
  }
}

/** Well-typed shapes, so that accepted statements also run (and could leak if the fence failed). */
const A = "'aaaaaaaa-0000-4000-8000-00000000000a'";
const TARGETS = [
  'transcript', 'count(*)', "string_agg(transcript, ',')", 'jsonb_agg(c)', 'row_to_json(c)', 'md5(transcript)', 'c.*', 'tenant_id',
  `(SELECT string_agg(transcript, '') FROM conversations WHERE tenant_id = ${B})`, "array_agg(transcript ORDER BY id)",
  'lower(transcript)', "coalesce(transcript, '')", 'to_jsonb(c) ->> \'transcript\'', 'length(transcript)', 'max(transcript)',
];
const PREDICATES = [
  `tenant_id = ${B}`, `tenant_id <> ${A}`, "transcript LIKE '%zqB%'", 'true', '$1::uuid = tenant_id', 'id > 0', `tenant_id IN (${B}, ${A})`,
  `EXISTS (SELECT 1 FROM conversations x WHERE x.tenant_id = ${B})`, 'NOT (tenant_id IS NULL)', "transcript ~ 'zq'",
];
function typed(r: Rand): string {
  const where = Array.from({ length: 1 + Math.floor(r() * 2) }, () => pick(r, PREDICATES)).join(pick(r, [' AND ', ' OR ']));
  switch (Math.floor(r() * 6)) {
    case 0:
      return `UPDATE conversations SET transcript = transcript || 'x' WHERE ${where} RETURNING transcript`;
    case 1:
      return `DELETE FROM conversations WHERE ${where} RETURNING *`;
    case 2:
      return `INSERT INTO conversations (tenant_id, agent_id, transcript) SELECT tenant_id, agent_id, transcript FROM conversations WHERE ${where} RETURNING transcript`;
    default: {
      const targets = Array.from({ length: 1 + Math.floor(r() * 2) }, () => pick(r, TARGETS)).join(', ');
      const aggregate = /count|agg|max/.test(targets);
      return `SELECT ${targets} FROM conversations c WHERE ${where}${aggregate ? (r() < 0.5 ? ' GROUP BY c.id' : '') : ' ORDER BY 1 LIMIT 5'}`;
    }
  }
}

/** One statement from the grammar. */
export function generate(r: Rand): string {
  const roll = r();
  const body = roll < 0.35 ? typed(r) : roll < 0.8 ? select(r, 3) : write(r, 3);
  return `${r() < 0.1 ? pick(r, PREFIXES) : ''}${body}`;
}

const TOKENS = [
  ';', '--', '/*', '*/', "'", '"', '$$', '$1', '(', ')', ',', '.', '::', 'E\'', 'U&"', ' UNION SELECT ', ' FROM pg_class ', ' OR true ',
  'xmin', 'ctid', 'set_config(', 'current_setting(', 'pg_sleep(', 'COMMIT', 'RESET ROLE', B, 'tenantfence.', 'pg_catalog.', ' RETURNING * ',
  '\\', '\u0000', '\u007f', '\ud800', 'é', ' ', '\n',
];

/** One mutation of `input`: a byte or token inserted, deleted or replaced, or a splice with another seed. */
export function mutate(r: Rand, input: string, seeds: readonly string[]): string {
  let s = input;
  const rounds = 1 + Math.floor(r() * 4);
  for (let i = 0; i < rounds; i++) {
    const at = Math.floor(r() * (s.length + 1));
    switch (Math.floor(r() * 6)) {
      case 0:
        s = s.slice(0, at) + pick(r, TOKENS) + s.slice(at);
        break;
      case 1:
        s = s.slice(0, at) + s.slice(at + 1 + Math.floor(r() * 8));
        break;
      case 2:
        s = s.slice(0, at) + String.fromCharCode(Math.floor(r() * 128)) + s.slice(at + 1);
        break;
      case 3: {
        const other = pick(r, seeds);
        const from = Math.floor(r() * other.length);
        s = s.slice(0, at) + other.slice(from, from + 1 + Math.floor(r() * 40)) + s.slice(at);
        break;
      }
      case 4: {
        const from = Math.floor(r() * s.length);
        s = s.slice(0, at) + s.slice(from, from + 1 + Math.floor(r() * 20)) + s.slice(at);
        break;
      }
      default:
        s = r() < 0.5 ? s.toUpperCase() : s.toLowerCase();
    }
  }
  return s;
}

/** Statements worth mutating: what agents send, and attacks the firewall must refuse. */
export const SEEDS: readonly string[] = [
  'SELECT id, transcript FROM conversations ORDER BY created_at DESC LIMIT 20',
  `SELECT * FROM conversations WHERE tenant_id = ${B}`,
  "SELECT set_config('tenantfence.context', 'x', true), * FROM conversations",
  'SELECT c.ctid, c.xmin FROM conversations c',
  'SELECT * FROM public.pg_stat_statements',
  'SELECT * FROM notes',
  "SELECT age(('(3)'::pg_class).relfrozenxid)",
  'WITH x AS (SELECT * FROM conversations) SELECT count(*) FROM x',
  "SELECT string_agg(transcript, ',') FROM conversations GROUP BY agent_id",
  `UPDATE conversations SET transcript = 'x' WHERE tenant_id = ${B} RETURNING *`,
  `DELETE FROM conversations WHERE tenant_id = ${B}`,
  `INSERT INTO conversations (tenant_id, agent_id, transcript) VALUES (${B}, gen_random_uuid(), 'x') RETURNING *`,
  'SELECT jsonb_agg(c) FROM conversations c',
  "SELECT * FROM conversations WHERE transcript LIKE '%' OR true",
  'SELECT 1; COMMIT; SELECT * FROM conversations',
];

export interface FuzzStats {
  inputs: number;
  crashes: number;
  hangs: number;
  accepted: number;
  executed: number;
  leaks: number;
  /** Accepted statements whose execution failed at the database (not a finding). */
  dbErrors: number;
  /** Refusals because the parser was being reloaded after a trap (the run is worth less when many). */
  reloading: number;
  findings: Array<{ kind: 'crash' | 'hang' | 'leak'; sql: string; detail: string }>;
}

export interface FuzzOptions {
  readonly seed: number;
  readonly inputs: number;
  readonly fixture: Fixture;
  /** The agent role's pool (one connection is enough). */
  readonly agent: pg.Pool;
  /** Firewall options per mode (with the server profile and the relation list, as the gateway has them). */
  readonly firewall: { read: FirewallOptions; write: FirewallOptions };
  readonly searchPath: string;
  readonly onProgress?: (stats: FuzzStats) => void;
}

export async function fuzz(options: FuzzOptions): Promise<FuzzStats> {
  const r = prng(options.seed);
  const stats: FuzzStats = { inputs: 0, crashes: 0, hangs: 0, accepted: 0, executed: 0, leaks: 0, dbErrors: 0, reloading: 0, findings: [] };
  const pool: string[] = [...SEEDS];
  const notices: string[] = [];
  const heard = new WeakSet<pg.PoolClient>();
  // The fence engine checks a connection out of the agent pool; notices are read from it too.
  const acquire = async () => {
    const client = await options.agent.connect();
    if (!heard.has(client)) {
      heard.add(client);
      client.on('notice', (n) => notices.push(`${n.message ?? ''} ${n.detail ?? ''} ${n.hint ?? ''}`));
    }
    return new PgFenceConnection(client);
  };
  for (let i = 0; i < options.inputs; i++) {
    const sql = r() < 0.5 ? generate(r) : mutate(r, pick(r, pool), pool);
    const mode = r() < 0.7 ? 'read' : 'write';
    stats.inputs += 1;
    let verdict: FirewallVerdict;
    const started = performance.now();
    try {
      verdict = checkSql(sql, options.firewall[mode]);
    } catch (error) {
      stats.crashes += 1;
      stats.findings.push({ kind: 'crash', sql, detail: String((error as Error)?.message ?? error) });
      continue;
    }
    const took = performance.now() - started;
    if (took > HANG_MS) {
      stats.hangs += 1;
      stats.findings.push({ kind: 'hang', sql, detail: `${Math.round(took)} ms` });
    }
    if (!verdict.ok) {
      if (verdict.reason === 'other' && /reloading its parser/.test(verdict.message)) stats.reloading += 1;
      continue;
    }
    stats.accepted += 1;
    if (pool.length < 2000) pool.push(sql);
    notices.length = 0;
    const leak = await underFence(acquire, options, sql, verdict.paramCount, mode);
    const inNotices = leakedMarkers(options.fixture, notices.join('\n'));
    stats.executed += 1;
    if (leak.error) stats.dbErrors += 1;
    const markers = leak.markers.length > 0 ? leak.markers : inNotices;
    if (markers.length > 0) {
      stats.leaks += 1;
      stats.findings.push({ kind: 'leak', sql, detail: `markers ${markers.join(', ')} in ${leak.markers.length > 0 ? leak.where : 'notices'}` });
    }
    if (options.onProgress && stats.inputs % 10_000 === 0) options.onProgress(stats);
  }
  return stats;
}

/**
 * Runs `sql` as the agent for tenant A on the fence engine (the gateway's own transaction: signed
 * context, pinned settings and search_path, timeouts), ended with ROLLBACK whatever happens.
 */
async function underFence(
  acquire: () => Promise<PgFenceConnection>,
  options: FuzzOptions,
  sql: string,
  paramCount: number,
  mode: 'read' | 'write',
): Promise<{ markers: string[]; where: string; error: boolean }> {
  // Parameters get tenant B's id: the statement may use it however it likes.
  const params = Array.from({ length: paramCount }, () => TENANT_B);
  let output: string;
  let where = 'rows';
  let error = false;
  try {
    const result = await runFenced(acquire, TENANT_A, (c) => c.query(sql, params), {
      key: options.fixture.key,
      readOnly: mode === 'read',
      rollback: true,
      statementTimeoutMs: 2000,
      lockTimeoutMs: 500,
      idleInTransactionTimeoutMs: 5000,
      settings: { search_path: options.searchPath },
    });
    output = JSON.stringify(result.rows);
  } catch (e) {
    error = true;
    where = 'error';
    const err = e as { message?: string; detail?: string; hint?: string; where?: string; cause?: { message?: string; detail?: string } };
    output = `${err.message ?? ''} ${err.detail ?? ''} ${err.hint ?? ''} ${err.where ?? ''} ${err.cause?.message ?? ''} ${err.cause?.detail ?? ''}`;
  }
  return { markers: leakedMarkers(options.fixture, output), where, error };
}
