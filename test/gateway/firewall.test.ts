/**
 * The firewall on ordinary agent queries: what it must accept, what it reports about them
 * (kind, parameters, fingerprint), its options, size and depth caps, EXPLAIN, and the parser's
 * recovery. The attacks are in firewall-refusals.test.ts. No database is needed: these are unit
 * tests of the parse-tree check; the database's own defences are tested against real Postgres.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { cachedCheck, checkExplain, checkSql, loadFirewall, type FirewallOptions, type FirewallVerdict } from '../../src/gateway/firewall.ts';
import { countTokens, parse } from '../../src/gateway/firewall-parser.ts';
import { scanSync } from 'libpg-query/wasm/index.js';
import { isTenantfenceError } from '../../src/errors.ts';

before(() => loadFirewall());

const read: FirewallOptions = { mode: 'read' };
const write: FirewallOptions = { mode: 'write' };

function accepted(verdict: FirewallVerdict): Extract<FirewallVerdict, { ok: true }> {
  assert.ok(verdict.ok, `expected acceptance, got ${JSON.stringify(verdict)}`);
  return verdict;
}

const READS: Array<[string, string]> = [
  ['join, aggregate, HAVING', 'SELECT c.id, count(m.id) AS n FROM conversations c LEFT JOIN messages m ON m.conversation_id = c.id GROUP BY c.id HAVING count(m.id) > 2 ORDER BY n DESC LIMIT 20'],
  ['CTE', "WITH recent AS (SELECT * FROM conversations WHERE created_at > now() - interval '7 days') SELECT count(*) FROM recent"],
  ['recursive CTE', 'WITH RECURSIVE tree(id, parent_id, depth) AS (SELECT id, parent_id, 0 FROM folders WHERE parent_id IS NULL UNION ALL SELECT f.id, f.parent_id, t.depth + 1 FROM folders f JOIN tree t ON f.parent_id = t.id) SELECT * FROM tree'],
  ['window functions', 'SELECT id, row_number() OVER (PARTITION BY agent_id ORDER BY created_at DESC) AS rn, sum(amount) OVER w, lag(amount) OVER w FROM orders WINDOW w AS (ORDER BY created_at ROWS BETWEEN 2 PRECEDING AND CURRENT ROW)'],
  ['ILIKE and regex', "SELECT * FROM customers WHERE name ILIKE '%acme%' OR email ~* '@acme\\.com$' OR name NOT LIKE 'x%'"],
  ['JSON operators', `SELECT data->>'status', data #>> '{a,b}', data @> '{"vip": true}'::jsonb, jsonb_array_length(data->'items') FROM events WHERE data ? 'status'`],
  ['LATERAL function', 'SELECT c.id, e.value FROM conversations c CROSS JOIN LATERAL jsonb_array_elements(c.tags) AS e(value)'],
  ['LATERAL subquery', 'SELECT c.id, last.body FROM conversations c LEFT JOIN LATERAL (SELECT body FROM messages m WHERE m.conversation_id = c.id ORDER BY created_at DESC LIMIT 1) last ON true'],
  ['subqueries', "SELECT *, (SELECT max(paid_at) FROM payments p WHERE p.order_id = o.id) FROM orders o WHERE customer_id IN (SELECT id FROM customers WHERE country = 'DE') AND EXISTS (SELECT 1 FROM payments p WHERE p.order_id = o.id)"],
  ['UNION', "SELECT id, 'order' AS kind FROM orders UNION ALL SELECT id, 'refund' FROM refunds ORDER BY 1"],
  ['INTERSECT and EXCEPT', 'SELECT id FROM a INTERSECT SELECT id FROM b EXCEPT SELECT id FROM c'],
  ['VALUES', "VALUES (1, 'a'), (2, 'b')"],
  ['VALUES in FROM', 'SELECT * FROM (VALUES (1), (2)) AS v(n)'],
  ['casts', "SELECT CAST(amount AS numeric(10,2)), created_at::date, '2024-01-01'::timestamptz, id::text, int4(amount) FROM orders"],
  ['DISTINCT ON', 'SELECT DISTINCT ON (customer_id) customer_id, created_at FROM orders ORDER BY customer_id, created_at DESC'],
  ['CASE and conditional expressions', "SELECT CASE WHEN amount > 100 THEN 'big' WHEN amount > 10 THEN 'medium' ELSE 'small' END, coalesce(note, ''), nullif(status, ''), greatest(a, b), least(a, b) FROM orders"],
  ['date math', "SELECT date_trunc('month', created_at), extract(dow FROM created_at), age(now(), created_at), created_at AT TIME ZONE 'UTC', current_date - 7, to_char(created_at, 'YYYY-MM') FROM orders WHERE created_at >= now() - interval '30 days'"],
  ['string functions', "SELECT lower(name), upper(name), substring(name FROM 1 FOR 3), trim(both ' ' FROM name), position('a' IN name), concat_ws(' ', first, last), string_agg(tag, ', ' ORDER BY tag) FROM customers GROUP BY 1, 2, 3, 4, 5, 6"],
  ['FILTER and WITHIN GROUP', "SELECT count(*) FILTER (WHERE status = 'paid'), percentile_cont(0.5) WITHIN GROUP (ORDER BY amount) FROM orders"],
  ['ROLLUP and GROUPING', 'SELECT region, product, sum(amount), grouping(region) FROM sales GROUP BY ROLLUP (region, product)'],
  ['text search', "SELECT id FROM docs WHERE to_tsvector('english', body) @@ websearch_to_tsquery('english', $1) ORDER BY ts_rank(to_tsvector(body), plainto_tsquery($1)) DESC"],
  ['arrays', "SELECT id FROM orders WHERE id = ANY($1::uuid[]) AND tags && ARRAY['a', 'b'] AND cardinality(tags) > 0 AND tags[1] = 'x'"],
  ['generate_series and uuid', "SELECT gen_random_uuid(), d::date FROM generate_series(now() - interval '6 days', now(), interval '1 day') AS d"],
  ['SQL/JSON functions', "SELECT JSON_VALUE(data, '$.status'), JSON_QUERY(data, '$.items'), data IS JSON OBJECT, JSON_OBJECT('a': 1), JSON_ARRAYAGG(id) FROM events"],
  ['JSON_TABLE', "SELECT jt.* FROM events, JSON_TABLE(data, '$.items[*]' COLUMNS (sku text PATH '$.sku', qty int PATH '$.qty')) AS jt"],
  ['column definition list', "SELECT * FROM jsonb_to_recordset('[]'::jsonb) AS x(a int, b text)"],
  ['a CTE that shadows a catalog view', 'WITH pg_stat_activity AS (SELECT 1 AS pid) SELECT * FROM pg_stat_activity'],
  ['a recursive WITH that refers to a later sibling', 'WITH RECURSIVE a AS (SELECT * FROM pg_stats), pg_stats AS (SELECT 1) SELECT * FROM a'],
  ['a quoted upper-case name (not the catalog view)', 'SELECT * FROM "PG_STAT_ACTIVITY"'],
  ['schema-qualified user tables', 'SELECT * FROM app.orders o JOIN public.customers c USING (customer_id)'],
  ['pg_catalog-qualified allowlisted function', 'SELECT pg_catalog.lower(name) FROM customers'],
  ['pg_catalog-qualified operator', 'SELECT 1 OPERATOR(pg_catalog.+) 2'],
  ['predicates', "SELECT * FROM orders WHERE status IS DISTINCT FROM 'void' AND amount BETWEEN 1 AND 10 AND note IS NOT NULL AND paid IS TRUE"],
  ['NULLS LAST, OFFSET, FETCH', 'SELECT * FROM orders ORDER BY paid_at DESC NULLS LAST OFFSET 10 FETCH FIRST 5 ROWS ONLY'],
  ['row comparison', 'SELECT * FROM t WHERE (a, b) IN ((1, 2), (3, 4))'],
  ['TABLE and ONLY', 'TABLE orders'],
  ['comments around a SELECT', '-- top customers\n/* by revenue */ SELECT 1 -- done'],
  ['trailing semicolons', 'SELECT 1;;'],
  ['SQL value functions', 'SELECT current_date, current_timestamp, localtime, current_user'],
  ['named arguments', "SELECT make_interval(days => 3), jsonb_set('{}', '{a}', '1', create_if_missing => true)"],
];

for (const [name, sql] of READS) {
  test(`read mode accepts ${name}`, () => {
    assert.equal(accepted(checkSql(sql, read)).kind, 'select');
  });
}

const WRITES: Array<[string, string, 'insert' | 'update' | 'delete' | 'select']> = [
  ['INSERT ... RETURNING', 'INSERT INTO notes (id, body) VALUES (gen_random_uuid(), $1) RETURNING id', 'insert'],
  ['INSERT ... ON CONFLICT DO UPDATE', 'INSERT INTO counters (key, n) VALUES ($1, 1) ON CONFLICT (key) DO UPDATE SET n = counters.n + excluded.n WHERE counters.n < 100 RETURNING n', 'insert'],
  ['INSERT ... ON CONFLICT DO NOTHING', 'INSERT INTO tags (name) VALUES ($1) ON CONFLICT DO NOTHING', 'insert'],
  ['INSERT ... SELECT', "INSERT INTO archive (id, body) SELECT id, body FROM notes WHERE created_at < now() - interval '1 year'", 'insert'],
  ['INSERT DEFAULT VALUES', 'INSERT INTO events DEFAULT VALUES RETURNING id', 'insert'],
  ['UPDATE ... RETURNING', "UPDATE orders SET status = 'shipped', updated_at = now() WHERE id = $1 RETURNING *", 'update'],
  ['UPDATE ... FROM', 'UPDATE orders o SET total = s.total FROM (SELECT order_id, sum(amount) AS total FROM items GROUP BY 1) s WHERE s.order_id = o.id', 'update'],
  ['UPDATE multi-column', 'UPDATE t SET (a, b) = (SELECT 1, 2), c = DEFAULT WHERE id = $1', 'update'],
  ['DELETE ... RETURNING', "DELETE FROM drafts WHERE created_at < now() - interval '30 days' RETURNING id", 'delete'],
  ['DELETE ... USING with a read-only CTE', "WITH stale AS (SELECT id FROM drafts WHERE updated_at < now() - interval '1 year') DELETE FROM drafts d USING stale s WHERE d.id = s.id", 'delete'],
  ['SELECT ... FOR UPDATE', 'SELECT * FROM orders WHERE id = $1 FOR UPDATE', 'select'],
  ['RETURNING old and new (PostgreSQL 18)', 'UPDATE t SET v = v + 1 WHERE id = $1 RETURNING old.v AS before, new.v AS after', 'update'],
];

for (const [name, sql, kind] of WRITES) {
  test(`write mode accepts ${name}`, () => {
    assert.equal(accepted(checkSql(sql, write)).kind, kind);
  });
}

test('paramCount is the highest $n used, wherever it is', () => {
  assert.equal(accepted(checkSql('SELECT * FROM orders WHERE a = $1 AND b = $3 LIMIT $2', read)).paramCount, 3);
  assert.equal(accepted(checkSql('SELECT 1', read)).paramCount, 0);
  assert.equal(accepted(checkSql('WITH x AS (SELECT $4::int AS n) SELECT * FROM x ORDER BY $1', read)).paramCount, 4);
  assert.equal(accepted(checkSql('UPDATE t SET a = $2 WHERE id = $1 RETURNING $5::int', write)).paramCount, 5);
});

test('the fingerprint ignores constants, whitespace and comments but not the statement shape', () => {
  const a = accepted(checkSql("SELECT * FROM orders WHERE status = 'paid' LIMIT 10", read)).fingerprint;
  const b = accepted(checkSql("select *\n  from orders  -- recent\n where status = 'void' limit 50", read)).fingerprint;
  const c = accepted(checkSql("SELECT * FROM refunds WHERE status = 'paid' LIMIT 10", read)).fingerprint;
  const d = accepted(checkSql("SELECT * FROM orders WHERE status <> 'paid' LIMIT 10", read)).fingerprint;
  assert.match(a, /^[0-9a-f]{16}$/);
  assert.equal(a, b);
  assert.notEqual(a, c);
  assert.notEqual(a, d);
});

test('allowFunctions adds names; it cannot add the never-allowed ones or qualified names', () => {
  const sql = 'SELECT similarity(name, $1) FROM customers';
  assert.equal(checkSql(sql, read).ok, false);
  accepted(checkSql(sql, { mode: 'read', allowFunctions: ['similarity'] }));
  for (const bad of [['set_config'], ['pg_sleep'], ['public.similarity'], ['Similarity']]) {
    assert.throws(() => checkSql(sql, { mode: 'read', allowFunctions: bad }), (e) => isTenantfenceError(e) && e.code === 'TF_USAGE');
  }
});

test('a server profile: node types newer than the server and names its pg_catalog lacks are refused', () => {
  const pg15 = { version: 150020, functions: new Set(['lower', 'count', 'json_object', 'jsonb_build_object']) };
  const sqlJson = "SELECT JSON_OBJECT('a': 1), x IS JSON, JSON_ARRAYAGG(id), json_scalar(1), JSON_VALUE(d, '$.a'), json(t) FROM t";
  assert.equal(pick(checkSql(sqlJson, { mode: 'read', server: pg15 })), 'other');
  for (const sql of ["SELECT JSON_OBJECT('a': 1)", 'SELECT x IS JSON FROM t', 'SELECT json_scalar(1)', 'SELECT json_serialize(x) FROM t', 'SELECT json(t) FROM t']) {
    const verdict = checkSql(sql, { mode: 'read', server: pg15 });
    assert.equal(pick(verdict), 'other', sql);
    assert.match(verdict.ok ? '' : verdict.message, /needs PostgreSQL 1[67], and this database runs 15: /, sql);
  }
  accepted(checkSql("SELECT json_object('{a,1}'::text[]), lower(name), count(*) FROM t GROUP BY 1, 2", { mode: 'read', server: pg15 }));
  const missing = checkSql('SELECT any_value(name) FROM t', { mode: 'read', server: pg15 });
  assert.equal(pick(missing), 'function');
  assert.match(missing.ok ? '' : missing.message, /any_value\(\) is not available on this database \(PostgreSQL 15/);
  // Extra names are cut to the server's pg_catalog too.
  assert.equal(pick(checkSql('SELECT similarity(a, b) FROM t', { mode: 'read', allowFunctions: ['similarity'], server: pg15 })), 'function');
  const pg17 = { version: 170000, functions: new Set(['any_value']) };
  accepted(checkSql("SELECT json_scalar(1), JSON_VALUE(d, '$.a'), any_value(x) FROM t", { mode: 'read', server: pg17 }));
  assert.equal(pick(checkSql('UPDATE t SET v = 1 RETURNING WITH (OLD AS o) o.v', { mode: 'write', server: pg17 })), 'other');
});

test('bad options and a missing load are loud', () => {
  assert.throws(() => checkSql('SELECT 1', { mode: 'admin' as 'read' }), /mode/);
  assert.throws(() => checkSql('SELECT 1', { mode: 'read', maxDepth: 0 }), /maxDepth/);
  assert.throws(() => checkSql('SELECT 1', { mode: 'read', maxBytes: 1.5 }), /maxBytes/);
});

test('size caps: bytes before parsing, counted in UTF-8', () => {
  const big = `SELECT 1 /* ${'x'.repeat(65536)} */`;
  assert.equal(pick(checkSql(big, read)), 'too_large');
  const euro = `SELECT '${'€'.repeat(30)}'`; // 30 characters, 90 bytes
  assert.equal(pick(checkSql(euro, { mode: 'read', maxBytes: 80 })), 'too_large');
  accepted(checkSql(euro, { mode: 'read', maxBytes: 120 }));
});

test('depth cap: nested subqueries and chained operators', () => {
  const nested = (n: number) => `SELECT ${'(SELECT '.repeat(n)}1${')'.repeat(n)}`;
  accepted(checkSql(nested(20), read));
  assert.equal(pick(checkSql(nested(120), read)), 'too_deep');
  assert.equal(pick(checkSql(nested(20), { mode: 'read', maxDepth: 30 })), 'too_deep');
  assert.equal(pick(checkSql(`SELECT 1${' + 1'.repeat(300)}`, read)), 'too_deep');
});

test('a statement deep enough to overflow the parser is refused before it reaches it', () => {
  // 7.5 KB of prefix operators overflowed the WASM stack in our measurements.
  assert.equal(pick(checkSql(`SELECT ${'-+'.repeat(5000)}1`, read)), 'too_large');
  accepted(checkSql('SELECT 1', read));
  // Long but flat statements (a big IN list) stay under the token cap.
  const ids = Array.from({ length: 1000 }, (_, i) => `'${String(i).padStart(8, '0')}-0000-4000-8000-000000000000'`);
  accepted(checkSql(`SELECT * FROM orders WHERE id IN (${ids.join(', ')})`, read));
});

test('the token count never undercounts the Postgres lexer, whatever the quoting', () => {
  const chain = `${'-+'.repeat(50)}1`;
  const inputs = [
    "SELECT 'a''b', E'c\\'d', 1",
    `SELECT E'\\'' || '${chain}'`,
    `SELECT $$ -- not a comment $$, $tag$ ' $tag$, ${chain}`,
    `SELECT 1$$x$$, a$b, $1, $2$$ ' $$, ${chain}, ' '`,
    `/* a /* nested */ still comment */ SELECT ${chain} -- end`,
    `SELECT "a""b", U&"x\\0041" UESCAPE '\\', B'101', X'ff', N'nat', ${chain}`,
    `SELECT 1+--comment\n${chain}`,
    `SELECT e'\\\\' , '${chain}', '\\', ${chain}`,
    `SELECT E '\\', ${chain}, 'x'`,
    'SELECT ünïcödé, "ç", 1.5e10, .5, 1_000, 0x1F, x::int[], a[1:2], b->>\'k\', c #>> \'{a}\', d <=> e',
  ];
  for (const sql of inputs) {
    const lexed = scanSync(sql).tokens.filter((t) => !t.tokenName.endsWith('COMMENT')).length;
    assert.ok(countTokens(sql, Infinity) >= lexed, sql);
  }
});

test('a parser trap drops that WASM instance and a fresh one takes over', async () => {
  const outcome = parse(`SELECT 1${'+1'.repeat(20000)}`); // straight to the parser, past the token cap
  assert.deepEqual(outcome, { ok: false, syntax: false, trapped: true });
  await loadFirewall();
  accepted(checkSql('SELECT 1', read));
});

test('empty input', () => {
  for (const sql of ['', '   \n', '-- only a comment', '/* nothing */ ;', ';']) assert.equal(pick(checkSql(sql, read)), 'empty', sql);
});

test('syntax errors and NUL bytes are parse errors', () => {
  const verdict = checkSql('SELEC 1', read);
  assert.equal(pick(verdict), 'parse_error');
  assert.match(verdict.ok ? '' : verdict.message, /syntax error at or near "SELEC"/);
  assert.equal(pick(checkSql('SELECT 1;\0 DROP TABLE x', read)), 'parse_error');
});

test('checkExplain accepts plain EXPLAIN with COSTS OFF of an allowed statement', () => {
  accepted(checkExplain('EXPLAIN (COSTS OFF) SELECT * FROM orders WHERE id = $1', read));
  const v = accepted(checkExplain("EXPLAIN (COSTS false, FORMAT JSON, VERBOSE) SELECT * FROM orders WHERE customer_id = $2", read));
  assert.deepEqual([v.kind, v.paramCount], ['select', 2]);
  assert.equal(accepted(checkExplain('EXPLAIN (COSTS 0) UPDATE t SET a = 1', write)).kind, 'update');
});

test('checkExplain refuses ANALYZE, other options, costs, non-EXPLAIN input and bad inner statements', () => {
  const cases: Array<[string, string, FirewallOptions?]> = [
    ['EXPLAIN ANALYZE SELECT 1', 'statement_kind'],
    ['EXPLAIN (ANALYZE, COSTS OFF) SELECT 1', 'statement_kind'],
    ['EXPLAIN (ANALYZE false, COSTS OFF) SELECT 1', 'statement_kind'],
    ['EXPLAIN (COSTS OFF, BUFFERS) SELECT 1', 'other'],
    ['EXPLAIN (COSTS OFF, SETTINGS) SELECT 1', 'other'],
    ['EXPLAIN (COSTS OFF, GENERIC_PLAN) SELECT * FROM t WHERE a = $1', 'other'],
    ['EXPLAIN SELECT * FROM orders', 'other'],
    ['EXPLAIN (COSTS OFF, COSTS ON) SELECT 1', 'other'],
    ['EXPLAIN VERBOSE SELECT 1', 'other'],
    ['SELECT 1', 'statement_kind'],
    ["EXPLAIN (COSTS OFF) SELECT set_config('tenantfence.context', 'x', true)", 'function'],
    ['EXPLAIN (COSTS OFF) SELECT * FROM pg_statistic', 'relation'],
    ['EXPLAIN (COSTS OFF) DELETE FROM orders', 'write_in_read_mode'],
    ['EXPLAIN (COSTS OFF) SELECT 1; SELECT 2', 'multiple_statements'],
    ['EXPLAIN (COSTS OFF) EXECUTE p', 'statement_kind'],
    ['EXPLAIN (COSTS OFF) CREATE TABLE x AS SELECT 1', 'statement_kind'],
  ];
  for (const [sql, reason, options] of cases) assert.equal(pick(checkExplain(sql, options ?? read)), reason, sql);
});

function pick(verdict: FirewallVerdict): string {
  return verdict.ok ? 'accepted' : verdict.reason;
}

test('cachedCheck gives checkSql\'s verdict, keeps it by text, and keeps at most 1,000 short statements', () => {
  const check = cachedCheck(read);
  const statements = [...READS.map(([, sql]) => sql), "DELETE FROM conversations", "SELECT pg_sleep(1)", "SELECT 1; SELECT 2", ''];
  for (const sql of statements) {
    const verdict = check(sql);
    assert.deepEqual(verdict, checkSql(sql, read), sql);
    assert.equal(check(sql), verdict, 'the second check is the kept verdict');
    assert.ok(Object.isFrozen(verdict));
  }
  // The options are part of the verdict: write mode's own cache accepts what read mode refused.
  assert.equal(check('DELETE FROM conversations').ok, false);
  assert.equal(cachedCheck(write)('DELETE FROM conversations').ok, true);
  // A long statement is checked every time, never kept.
  const long = `SELECT 1 AS x /* ${'y'.repeat(9000)} */`;
  assert.notEqual(check(long), check(long));
  // The oldest verdict goes once 1,000 are kept.
  const first = check('SELECT 0 AS n');
  for (let n = 1; n <= 1000; n++) check(`SELECT ${n} AS n`);
  const again = check('SELECT 0 AS n');
  assert.notEqual(again, first);
  assert.deepEqual(again, first);
});
