/**
 * The firewall against attacks: statements published Postgres MCP servers let through (multi-
 * statement escapes, a leading comment before DROP, functions in the FROM clause), functions
 * hidden in every clause, catalog relations under every spelling, and every utility statement.
 * Each row names the reason the firewall must give; messages are checked to name the fix.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { checkSql, loadFirewall, type FirewallMode, type FirewallReason } from '../../src/gateway/firewall.ts';

before(() => loadFirewall());

const SET = "set_config('tenantfence.context', 'forged', true)";

/** [name, sql, reason, mode (default read)] */
type Row = [string, string, FirewallReason, FirewallMode?];

const ESCAPES: Row[] = [
  ['a COMMIT and DROP after a SELECT', 'SELECT 1; COMMIT; DROP TABLE orders', 'multiple_statements'],
  ['two SELECTs', 'SELECT 1; SELECT 2', 'multiple_statements'],
  ['a leading block comment before DROP', '/* read-only report */ DROP TABLE orders', 'statement_kind'],
  ['a leading line comment before DROP', '-- SELECT\nDROP TABLE orders', 'statement_kind'],
  ['SELECT INTO a new table', 'SELECT * INTO newtable FROM orders', 'statement_kind'],
  ['FOR UPDATE in read mode', 'SELECT * FROM orders FOR UPDATE', 'locking_clause'],
  ['FOR SHARE in read mode', 'SELECT * FROM orders FOR SHARE', 'locking_clause'],
  ['FOR NO KEY UPDATE in a subquery', 'SELECT * FROM (SELECT * FROM orders FOR NO KEY UPDATE) s', 'locking_clause'],
  ['FOR KEY SHARE in a CTE', 'WITH x AS (SELECT * FROM orders FOR KEY SHARE) SELECT * FROM x', 'locking_clause'],
  ['INSERT in read mode', 'INSERT INTO orders (id) VALUES (1)', 'write_in_read_mode'],
  ['UPDATE in read mode', 'UPDATE orders SET amount = 0', 'write_in_read_mode'],
  ['DELETE in read mode', 'DELETE FROM orders', 'write_in_read_mode'],
  ['a data-modifying CTE in read mode', 'WITH d AS (DELETE FROM orders RETURNING *) SELECT count(*) FROM d', 'write_in_read_mode'],
  ['a data-modifying CTE in write mode', 'WITH d AS (DELETE FROM orders RETURNING *) SELECT count(*) FROM d', 'statement_kind', 'write'],
  ['a DML inside a DML CTE in write mode', 'WITH d AS (DELETE FROM a RETURNING id) INSERT INTO b SELECT id FROM d', 'statement_kind', 'write'],
  ['WHERE CURRENT OF', 'DELETE FROM orders WHERE CURRENT OF c', 'other', 'write'],
  ['the ctid system column', 'SELECT ctid, id FROM orders', 'other'],
  ['the xmin system column, qualified, in WHERE', 'SELECT id FROM orders o WHERE o.xmin::text::bigint > 0', 'other'],
  ['the xmax system column in RETURNING', 'UPDATE orders SET amount = 1 RETURNING xmax', 'other', 'write'],
  ['XML construction', 'SELECT xmlelement(name a, id) FROM orders', 'other'],
];

/** System columns and the types that read transaction, tuple or catalog ids, in every spelling. */
const SYSTEM: Row[] = [
  ['xmin, ctid, cmax by field selection', 'SELECT (c).xmin AS x, (c).ctid AS t, (c).cmax AS m FROM conversations c', 'other'],
  ['xmin from a starred whole row', 'SELECT (c.*).xmin FROM conversations c', 'other'],
  ['a field selection in WHERE', 'SELECT id FROM conversations c WHERE (c).xmax <> 0', 'other'],
  ['a field selection in RETURNING', "UPDATE conversations c SET transcript = 'y' WHERE id = 1 RETURNING (c).xmin, (c).ctid", 'other', 'write'],
  ['xmin in functional notation', 'SELECT xmin(c) FROM conversations c', 'other'],
  ['ctid in functional notation, qualified', 'SELECT pg_catalog.ctid(c) FROM conversations c', 'other'],
  ['tableoid', 'SELECT tableoid::regclass, id FROM orders', 'other'],
  ['tableoid by field selection', 'SELECT (o).tableoid FROM orders o', 'other'],
  ['the global transaction counter through age(xid)', "SELECT age('3'::xid)", 'other'],
  ['a CAST to xid8', "SELECT CAST('3' AS xid8)", 'other'],
  ['a typed literal of tid', "SELECT tid '(0,1)'", 'other'],
  ['a pg_catalog-qualified cid', "SELECT '1'::pg_catalog.cid", 'other'],
  ['an xid array', "SELECT '{3}'::xid[]", 'other'],
  ['an xid array by its internal name', "SELECT '{3}'::_xid", 'other'],
  ['an xid column in a column definition list', "SELECT * FROM jsonb_to_record('{}') AS r(a xid)", 'other'],
  ['a regclass lookup of a catalog', "SELECT 'pg_authid'::regclass::oid", 'other'],
  ['a regrole lookup', "SELECT 'postgres'::regrole", 'other'],
  ['a regnamespace lookup', "SELECT 'tenantfence'::regnamespace", 'other'],
  ['a regprocedure lookup', "SELECT 'tenantfence.current_tenant()'::regprocedure", 'other'],
];

const FUNCTIONS_IN_EVERY_CLAUSE: Row[] = [
  ['set_config in the select list', `SELECT ${SET}`, 'function'],
  ['set_config as a FROM-clause function after a comment', `SELECT * FROM /* */ ${SET}`, 'function'],
  ['set_config in a CTE', `WITH x AS (SELECT ${SET}) SELECT * FROM x`, 'function'],
  ['set_config in an EXISTS sublink', `SELECT * FROM orders WHERE EXISTS (SELECT ${SET})`, 'function'],
  ['set_config in an IN sublink', `SELECT * FROM orders WHERE id IN (SELECT ${SET})`, 'function'],
  ['set_config in ORDER BY', `SELECT * FROM orders ORDER BY ${SET}`, 'function'],
  ['set_config in GROUP BY', `SELECT count(*) FROM orders GROUP BY ${SET}`, 'function'],
  ['set_config in HAVING', `SELECT count(*) FROM orders HAVING ${SET} IS NOT NULL`, 'function'],
  ['set_config in an OVER clause', `SELECT row_number() OVER (ORDER BY ${SET}) FROM orders`, 'function'],
  ['set_config in a WINDOW clause', `SELECT sum(amount) OVER w FROM orders WINDOW w AS (PARTITION BY ${SET})`, 'function'],
  ['set_config in a LATERAL subquery', `SELECT * FROM orders, LATERAL (SELECT ${SET}) s`, 'function'],
  ['set_config in a JOIN condition', `SELECT * FROM orders o JOIN items i ON ${SET} IS NOT NULL`, 'function'],
  ['set_config in LIMIT', `SELECT * FROM orders LIMIT length(${SET})`, 'function'],
  ['set_config in an aggregate FILTER', `SELECT count(*) FILTER (WHERE ${SET} IS NULL) FROM orders`, 'function'],
  ['set_config in a CASE', `SELECT CASE WHEN amount > 0 THEN ${SET} END FROM orders`, 'function'],
  ['set_config in COALESCE', `SELECT coalesce(note, ${SET}) FROM orders`, 'function'],
  ['set_config under a cast', `SELECT (${SET})::text`, 'function'],
  ['set_config as a JSON operand', `SELECT '{}'::jsonb -> ${SET}`, 'function'],
  ['set_config in VALUES', `VALUES (${SET})`, 'function'],
  ['set_config in a UNION branch', `SELECT 1 UNION SELECT length(${SET})`, 'function'],
  ['set_config in DISTINCT ON', `SELECT DISTINCT ON (${SET}) * FROM orders`, 'function'],
  ['set_config in ROWS FROM', `SELECT * FROM ROWS FROM (${SET}) AS s`, 'function'],
  ['set_config in JSON_TABLE', `SELECT * FROM JSON_TABLE((${SET})::jsonb, '$' COLUMNS (a int PATH '$.a')) jt`, 'function'],
  ['set_config in a named argument', `SELECT make_interval(days => length(${SET}))`, 'function'],
  ['set_config in ON CONFLICT DO UPDATE SET', `INSERT INTO t (id) VALUES (1) ON CONFLICT (id) DO UPDATE SET v = ${SET}`, 'function', 'write'],
  ['set_config in ON CONFLICT WHERE', `INSERT INTO t (id) VALUES (1) ON CONFLICT (id) DO UPDATE SET v = 1 WHERE ${SET} IS NOT NULL`, 'function', 'write'],
  ['set_config in RETURNING', `INSERT INTO t (id) VALUES (1) RETURNING ${SET}`, 'function', 'write'],
  ['set_config in UPDATE SET', `UPDATE t SET v = ${SET}`, 'function', 'write'],
  ['set_config in DELETE USING', `DELETE FROM t USING ${SET} s`, 'function', 'write'],
  ['set_config pg_catalog-qualified', `SELECT pg_catalog.${SET}`, 'function'],
  ['a quoted upper-case function name', 'SELECT "LOWER"(name) FROM customers', 'function'],
  ['a function qualified with public', 'SELECT public.lower(name) FROM customers', 'function'],
  ['an operator qualified with public', 'SELECT 1 OPERATOR(public.+) 2', 'function'],
  ['ORDER BY USING an operator qualified with public', 'SELECT * FROM t ORDER BY a USING OPERATOR(public.<)', 'function'],
  ['an ANY sublink with a schema-qualified operator', 'SELECT * FROM t WHERE a OPERATOR(public.=) ANY (SELECT 1)', 'function'],
  ['a TABLESAMPLE method from an extension', 'SELECT * FROM orders TABLESAMPLE system_rows (10)', 'other'],
  // A seeded sample of the tenant's own rows gives away their block numbers, like ctid.
  ['TABLESAMPLE SYSTEM with a seed', 'SELECT id FROM orders TABLESAMPLE SYSTEM (50) REPEATABLE ($1)', 'other'],
  ['TABLESAMPLE BERNOULLI', 'SELECT id FROM orders TABLESAMPLE BERNOULLI (10)', 'other'],
  ['a type from the tenantfence schema', "SELECT NULL::tenantfence.token", 'other'],
];

const DANGEROUS_FUNCTIONS = [
  'pg_sleep(10)', 'pg_sleep_for(\'1 minute\')', 'pg_sleep_until(now())', 'pg_advisory_lock(1)',
  'pg_try_advisory_lock(1)', 'pg_advisory_xact_lock(1)', 'pg_terminate_backend(1)', 'pg_cancel_backend(1)',
  "pg_read_file('/etc/passwd')", "pg_read_binary_file('/etc/passwd')", "pg_ls_dir('.')", "pg_stat_file('.')",
  "lo_import('/etc/passwd')", 'lo_get(1)', "lo_export(1, '/tmp/x')", "dblink('host=x', 'SELECT 1')",
  "dblink_exec('DROP TABLE x')", "pg_notify('ch', 'x')", "nextval('orders_id_seq')", "currval('orders_id_seq')",
  "setval('orders_id_seq', 1)", 'lastval()', 'txid_current()', 'pg_current_xact_id()', "current_setting('tenantfence.context')",
  "current_setting('tenantfence.context', true)", "query_to_xml('SELECT * FROM orders', true, true, '')",
  "ts_stat('SELECT body FROM docs')", "pg_relation_size('orders')", 'pg_backend_pid()', 'setseed(0.5)', 'version()',
  'tenantfence.current_tenant()', 'tenantfence.sign_context(1)', "has_table_privilege('orders', 'SELECT')",
  // one-call amplifiers: a gigabyte in the server's memory from a few bytes of SQL
  "repeat('x', 1000000000)", "lpad('', 1000000000, 'x')", "rpad('', 1000000000, 'x')", 'array_fill(1, ARRAY[200000000])',
];

const RELATIONS: Row[] = [
  ['pg_stat_activity unqualified', 'SELECT * FROM pg_stat_activity', 'relation'],
  ['pg_stat_activity qualified', 'SELECT * FROM pg_catalog.pg_stat_activity', 'relation'],
  ['pg_stat_activity quoted in lower case', 'SELECT * FROM "pg_stat_activity"', 'relation'],
  ['pg_stat_activity with a quoted schema', 'SELECT * FROM "pg_catalog"."pg_stat_activity"', 'relation'],
  ['pg_stat_activity unicode-escaped', 'SELECT * FROM U&"pg\\005fstat_activity"', 'relation'],
  ['pg_stat_activity unicode-escaped with UESCAPE', "SELECT * FROM U&\"pg!005fstat_activity\" UESCAPE '!'", 'relation'],
  ['pg_stat_activity in a subquery', 'SELECT * FROM orders WHERE EXISTS (SELECT 1 FROM pg_stat_activity)', 'relation'],
  ['pg_stat_activity in a LATERAL join', 'SELECT * FROM orders, LATERAL (SELECT * FROM pg_stat_activity) a', 'relation'],
  ['a CTE that is shadowed by nothing once qualified', 'WITH pg_stat_activity AS (SELECT 1) SELECT * FROM pg_catalog.pg_stat_activity', 'relation'],
  ['a later sibling CTE without RECURSIVE', 'WITH a AS (SELECT * FROM pg_stats), pg_stats AS (SELECT 1) SELECT * FROM a', 'relation'],
  ['a CTE seen outside its subquery', 'SELECT * FROM (WITH pg_stats AS (SELECT 1) SELECT * FROM pg_stats) s, pg_stats', 'relation'],
  ['a CTE in one UNION branch seen from the other', '(WITH pg_locks AS (SELECT 1) SELECT * FROM pg_locks) UNION ALL SELECT 1 FROM pg_locks', 'relation'],
  ['a DML target named like a CTE', 'WITH pg_authid AS (SELECT 1) DELETE FROM pg_authid', 'relation', 'write'],
  ['pg_locks', 'SELECT * FROM pg_locks', 'relation'],
  ['pg_statistic', 'SELECT * FROM pg_statistic', 'relation'],
  ['pg_stats', 'SELECT * FROM pg_stats', 'relation'],
  ['pg_statio_user_tables', 'SELECT * FROM pg_statio_user_tables', 'relation'],
  ['pg_stat_statements', 'SELECT * FROM pg_stat_statements', 'relation'],
  ['pg_prepared_xacts', 'SELECT * FROM pg_prepared_xacts', 'relation'],
  ['pg_settings', 'SELECT * FROM pg_settings', 'relation'],
  ['pg_authid', 'TABLE pg_authid', 'relation'],
  ['pg_roles', 'SELECT * FROM pg_roles', 'relation'],
  ['pg_class (reltuples counts every tenant)', 'SELECT reltuples FROM pg_class', 'relation'],
  ['information_schema', 'SELECT * FROM information_schema.tables', 'relation'],
  ['pg_toast', 'SELECT * FROM pg_toast.pg_toast_2619', 'relation'],
  ['another session temp schema', 'SELECT * FROM pg_temp_3.scratch', 'relation'],
  ['tenantfence.keys', 'SELECT * FROM tenantfence.keys', 'relation'],
  ['tenantfence.audit_log', 'SELECT * FROM tenantfence.audit_log', 'relation'],
  ['a three-part name into pg_catalog', 'SELECT * FROM app.pg_catalog.pg_authid', 'relation'],
  ['a write into the tenantfence schema', "INSERT INTO tenantfence.keys VALUES ('k', 'secret')", 'relation', 'write'],
];

const UTILITY = [
  'BEGIN', 'START TRANSACTION READ WRITE', 'COMMIT', 'ROLLBACK', 'SAVEPOINT s', 'RELEASE SAVEPOINT s', 'ROLLBACK TO s',
  "SET tenantfence.context = 'x'", 'SET LOCAL statement_timeout = 0', 'SET ROLE postgres', 'SET SESSION AUTHORIZATION postgres',
  'RESET ALL', 'RESET ROLE', 'DISCARD ALL', 'SHOW search_path', "DO $$ BEGIN PERFORM pg_sleep(1); END $$",
  'COPY orders TO STDOUT', "COPY (SELECT * FROM orders) TO '/tmp/x'", "COPY orders FROM '/tmp/x'",
  'PREPARE p AS SELECT 1', 'EXECUTE p', 'DEALLOCATE p', 'DECLARE c CURSOR FOR SELECT 1', 'FETCH c', 'CLOSE c',
  'LISTEN ch', "NOTIFY ch, 'x'", 'UNLISTEN *', 'LOCK TABLE orders', 'VACUUM orders', 'ANALYZE orders',
  'CREATE TABLE x (a int)', 'CREATE TABLE x AS SELECT 1', 'CREATE VIEW v AS SELECT 1', 'ALTER TABLE orders DISABLE ROW LEVEL SECURITY',
  'DROP TABLE orders', 'TRUNCATE orders', 'GRANT SELECT ON orders TO public', 'REVOKE SELECT ON orders FROM public',
  "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'", 'CREATE POLICY p ON orders USING (true)',
  'EXPLAIN SELECT 1', 'EXPLAIN ANALYZE SELECT 1', 'CALL p()', 'MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE',
  'REFRESH MATERIALIZED VIEW mv', 'CHECKPOINT', "LOAD 'auto_explain'", 'CREATE EXTENSION dblink', 'COMMENT ON TABLE orders IS NULL',
];

const table: Row[] = [
  ...ESCAPES,
  ...SYSTEM,
  ...FUNCTIONS_IN_EVERY_CLAUSE,
  ...DANGEROUS_FUNCTIONS.map((call): Row => [call, `SELECT ${call}`, 'function']),
  ...DANGEROUS_FUNCTIONS.map((call): Row => [`${call} in FROM`, `SELECT * FROM ${call} AS f`, 'function']),
  ...RELATIONS,
  ...UTILITY.map((sql): Row => [sql, sql, 'statement_kind']),
  ...UTILITY.map((sql): Row => [`${sql} in write mode`, sql, 'statement_kind', 'write']),
];

for (const [name, sql, reason, mode = 'read'] of table) {
  test(`refuses ${name}${mode === 'write' ? ' (write mode)' : ''}`, () => {
    const verdict = checkSql(sql, { mode });
    assert.equal(verdict.ok, false, `accepted: ${sql}`);
    if (verdict.ok) return;
    assert.equal(verdict.reason, reason, verdict.message);
    // One sentence that names the fix: "<what> ...: <what to do>."
    assert.match(verdict.message, /^[^\n]+: [^\n]+\.$/);
  });
}

test('a function refusal names the function and says the tenant filter is automatic', () => {
  const verdict = checkSql(`SELECT * FROM ${SET}`, { mode: 'read' });
  assert.ok(!verdict.ok);
  assert.match(verdict.message, /remove set_config\(\)/);
  assert.match(verdict.message, /tenant filtering is automatic/);
});

test('a system column refusal says why and what to select instead', () => {
  const verdict = checkSql('SELECT (c).xmin FROM conversations c', { mode: 'read' });
  assert.ok(!verdict.ok);
  assert.match(verdict.message, /system column xmin .* across every tenant: select your table's own columns/);
});

test('whole-row values, text search configurations and regtype stay allowed', () => {
  for (const sql of [
    'SELECT row_to_json(c), to_jsonb(c), c::text, (c).transcript, (c.*).id FROM conversations c',
    "SELECT to_tsvector('english'::regconfig, transcript), pg_typeof(id)::text, 'int4'::regtype FROM conversations",
  ]) {
    const verdict = checkSql(sql, { mode: 'read' });
    assert.ok(verdict.ok, `${sql}: ${JSON.stringify(verdict)}`);
  }
});

test('a relation refusal points to the schema tools', () => {
  const verdict = checkSql('SELECT * FROM pg_stat_activity', { mode: 'read' });
  assert.ok(!verdict.ok);
  assert.match(verdict.message, /list_tables and describe_table/);
});
