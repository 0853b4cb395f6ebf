/**
 * The firewall's issue-10 rules, without a database: the relation allowlist (only protected or
 * exposed relations, resolved as the pinned search_path resolves them), types built on catalog row
 * types, explicit values for sequence-filled keys, and the static bound on what one statement can
 * build in the server's memory. The same rules against real PostgreSQL: relations.test.ts, memory.test.ts.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { checkSql, loadFirewall, relationKey, type FirewallOptions, type FirewallRelations } from '../../src/gateway/firewall.ts';
import { statementBytes } from '../../src/gateway/firewall-size.ts';
import { parse } from '../../src/gateway/firewall-parser.ts';

before(() => loadFirewall());

const key = relationKey;
/** public.conversations is protected; public.countries exposed; public.notes and public.pg_stat_statements are neither. */
const relations: FirewallRelations = {
  allowed: new Set([key('public', 'conversations'), key('public', 'countries'), key('app', 'orders')]),
  resolve: new Map([
    ['conversations', key('public', 'conversations')],
    ['countries', key('public', 'countries')],
    ['notes', key('public', 'notes')],
    ['pg_stat_statements', key('public', 'pg_stat_statements')],
    ['orders', key('public', 'orders')], // an unprotected public.orders shadows app.orders on the path
  ]),
  sequenceColumns: new Map([[key('public', 'conversations'), new Set(['id'])]]),
  refusedTypes: new Set(['txinfo', key('public', 'txinfo'), '_txinfo', 'myxid', key('public', 'myxid')]),
};
const read: FirewallOptions = { mode: 'read', relations };
const write: FirewallOptions = { mode: 'write', relations };

function refused(sql: string, options: FirewallOptions, reason: string, message?: RegExp): void {
  const verdict = checkSql(sql, options);
  assert.equal(verdict.ok, false, `accepted: ${sql.slice(0, 200)}`);
  if (verdict.ok) return;
  assert.equal(verdict.reason, reason, `${sql}: ${verdict.message}`);
  if (message) assert.match(verdict.message, message);
  assert.match(verdict.message, /^[^\n]+: [^\n]+\.$/);
}

function accepted(sql: string, options: FirewallOptions): void {
  const verdict = checkSql(sql, options);
  assert.ok(verdict.ok, `${sql}: ${JSON.stringify(verdict)}`);
}

test('relations: protected and exposed ones are accepted, qualified or as the path resolves them', () => {
  for (const sql of [
    'SELECT * FROM conversations',
    'SELECT * FROM public.conversations c JOIN countries k ON true',
    'SELECT * FROM app.orders',
    'WITH notes AS (SELECT 1 AS n) SELECT * FROM notes',
  ]) accepted(sql, read);
  accepted("INSERT INTO conversations (tenant_id, agent_id) VALUES ($1, gen_random_uuid())", write);
});

test('relations: everything else is refused, whatever schema it sits in', () => {
  for (const sql of [
    'SELECT * FROM public.pg_stat_statements',
    'SELECT * FROM "public"."pg_stat_statements"',
    'SELECT * FROM notes',
    'SELECT * FROM public.notes',
    'SELECT * FROM orders', // resolves to public.orders, not the allowed app.orders
    'SELECT * FROM nowhere',
    'SELECT * FROM conversations WHERE EXISTS (SELECT 1 FROM notes)',
    'SELECT * FROM other.conversations',
  ]) refused(sql, read, 'relation', /not a table this agent may query|off limits/);
  refused("DELETE FROM notes", write, 'relation');
  refused("WITH notes AS (SELECT 1) DELETE FROM notes", write, 'relation');
});

test('without a relation list only the name rules apply (offline checks of a shape)', () => {
  accepted('SELECT * FROM public.pg_stat_statements', { mode: 'read' });
  refused('SELECT * FROM pg_stat_statements', { mode: 'read' }, 'relation');
});

test('types: catalog row types and types built on refused ones', () => {
  for (const sql of [
    "SELECT age(('(x)'::pg_class).relfrozenxid)",
    'SELECT (NULL::pg_catalog.pg_database).datfrozenxid',
    "SELECT json_populate_record(NULL::pg_class, '{}')",
    'SELECT * FROM json_to_record($1) AS r(x pg_stat_activity)',
    'SELECT NULL::_pg_class',
  ]) refused(sql, { mode: 'read' }, 'other', /type/);
  for (const sql of ["SELECT age(('(3)'::txinfo).x)", "SELECT '3'::public.myxid", 'SELECT NULL::txinfo[]', "SELECT age('3'::myxid)"]) {
    refused(sql, read, 'other', /built on a transaction-id or catalog type/);
  }
  accepted("SELECT '1'::int4, 'english'::regconfig, NULL::conversations", read);
});

test('write mode: no explicit value for a sequence-filled key', () => {
  for (const sql of [
    "INSERT INTO conversations (id, tenant_id, agent_id) VALUES (42, $1, gen_random_uuid())",
    "INSERT INTO public.conversations (id, tenant_id) SELECT 42, $1",
    "INSERT INTO conversations VALUES (42, $1, gen_random_uuid())",
    "INSERT INTO conversations (tenant_id, agent_id) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET id = 42",
    'UPDATE conversations SET id = id + 1000',
    'UPDATE conversations SET (transcript, id) = (SELECT transcript, 7 FROM conversations LIMIT 1)',
  ]) refused(sql, write, 'other', /filled from a sequence|must list its columns/);
  accepted("INSERT INTO conversations (tenant_id, agent_id) VALUES ($1, gen_random_uuid()) RETURNING id", write);
  accepted("INSERT INTO conversations DEFAULT VALUES", write);
  accepted("UPDATE conversations SET transcript = 'x' WHERE id = 42", write);
});

test('memory: nested size-growing functions are refused, ordinary queries are not', () => {
  const nested = (depth: number) => `SELECT length(${'replace('.repeat(depth)}'aaaaaaaa'${", 'a', 'aaaaaaaa')".repeat(depth)})`;
  accepted(nested(3), read);
  accepted(nested(7), read);
  refused(nested(8), read, 'too_large', /values of \d+ MiB in the server's memory/);
  for (const sql of [
    "SELECT format('%1$999999999s', 'x')",
    "SELECT format($1, 'x')",
    "SELECT format('%*s', 999999999, 'x')",
    `SELECT concat_ws('${'x'.repeat(30000)}', VARIADIC string_to_array('${'y'.repeat(3000)}', NULL))`,
    `SELECT array_to_string(string_to_array('${'y'.repeat(30000)}', NULL), '${'x'.repeat(3000)}')`,
    `SELECT regexp_replace('${'y'.repeat(20000)}', '', '${'x'.repeat(2000)}', 'g')`,
    `SELECT ${"encode(".repeat(14)}'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'::bytea${", 'hex')::bytea".repeat(14)}`,
    `SELECT jsonb_pretty('${'['.repeat(6000)}${']'.repeat(6000)}')`,
    // one such value fits the budget; three side by side in one row do not
    `SELECT ${Array.from({ length: 3 }, () => nested(7).slice('SELECT '.length)).join(', ')}`,
  ]) refused(sql, read, 'too_large');
  for (const sql of [
    "SELECT replace(transcript, E'\\n', ' '), upper(transcript), format('%s: %s', id, transcript), string_agg(transcript, ', ') FROM conversations GROUP BY 1, 2, 3",
    "SELECT jsonb_pretty(to_jsonb(c)), regexp_replace(transcript, '\\s+', ' ', 'g'), array_to_string(ARRAY[1, 2], ', ') FROM conversations c",
    "SELECT to_char(created_at, 'YYYY-MM-DD'), encode(sha256(transcript::bytea), 'hex') FROM conversations",
    'SELECT * FROM conversations WHERE id = ANY($1::bigint[]) AND transcript ILIKE $2',
  ]) accepted(sql, read);
  assert.equal(checkSql(nested(8), { ...read, maxValueBytes: 1 << 30 }).ok, true, 'the budget is an option');
});

test('the size bound: literals count their bytes, parameters their cap, nesting multiplies', () => {
  const bound = (sql: string) => {
    const r = parse(sql);
    assert.ok(r.ok);
    return statementBytes(r.tree.stmts![0]!.stmt);
  };
  assert.ok(bound("SELECT 'abc'") < 100);
  assert.ok(bound("SELECT replace('aaaa', 'a', 'bbbb')") >= 16);
  assert.ok(bound("SELECT replace(replace('aaaa', 'a', 'bbbb'), 'b', 'cccc')") >= 64);
  assert.equal(bound("SELECT format($1, 'x')"), Infinity);
});
