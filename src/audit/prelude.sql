-- The vocabulary every rule shares, prepended by the runner as the first CTEs of each rule
-- (a rule is `SELECT object, detail, remediation, key FROM ...` that may use these names).
-- Parameters: $1 schemas (text[]), $2 tenant column, $3 app role, $4 agent role. They are bind
-- parameters, never spliced. Unreferenced CTEs are not executed (PostgreSQL 12+), so a rule pays
-- only for what it reads.
params AS (
  SELECT $1::text[] AS schemas, $2::text AS tenant_column, $3::text AS app_role, $4::text AS agent_role
),
-- tenantfence's own names (src/sql/roles.ts; a test keeps the two in step).
fence AS (
  SELECT 'tenantfence'::text AS schema, 'tenantfence_owner'::text AS owner, 'tenantfence_isolation'::text AS policy
),
-- The app and agent roles, when they exist: the roles that must stay inside the fence.
fenced AS (
  SELECT r.oid, r.rolname::text AS rolname, r.rolsuper, r.rolbypassrls, w.which
    FROM params p
   CROSS JOIN LATERAL (VALUES ('app', p.app_role), ('agent', p.agent_role)) AS w(which, name)
    JOIN pg_roles r ON r.rolname = w.name
),
-- Schemas people create objects in: everything but the system's own.
user_schemas AS (
  SELECT n.oid, n.nspname::text AS nspname
    FROM pg_namespace n
   WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
     AND n.nspname NOT LIKE 'pg\_temp\_%' AND n.nspname NOT LIKE 'pg\_toast\_temp\_%'
),
-- A tenant table: a table or partitioned table in the audited schemas with the tenant column.
tenant_tables AS (
  SELECT c.oid, n.nspname::text AS schema, c.relname::text AS name,
         n.nspname || '.' || c.relname AS object,
         format('%I.%I', n.nspname, c.relname) AS sql_name,
         c.relowner, pg_get_userbyid(c.relowner)::text AS owner,
         c.relrowsecurity AS rls_enabled, c.relforcerowsecurity AS rls_forced,
         a.attnum AS tenant_attnum, format_type(a.atttypid, a.atttypmod) AS tenant_type,
         quote_ident(a.attname) AS tenant_sql,
         -- The tenant column as pg_get_expr prints it, escaped for use inside a regular expression.
         regexp_replace(quote_ident(a.attname), '([.^$*+?()\[\]{}|\\])', '\\\1', 'g') AS tenant_re,
         -- What `tenantfence protect` would install (src/sql/protect.ts; a test keeps them equal).
         format(E'DROP POLICY IF EXISTS %1$I ON %2$s;\nCREATE POLICY %1$I ON %2$s AS PERMISSIVE FOR ALL TO PUBLIC\n  USING (%3$s)\n  WITH CHECK (%3$s);',
                f.policy, format('%I.%I', n.nspname, c.relname),
                format('%I = (SELECT %I.current_tenant()::%s)', a.attname, f.schema, format_type(a.atttypid, a.atttypmod))) AS fence_policy
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    CROSS JOIN params p
    CROSS JOIN fence f
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = p.tenant_column AND a.attnum > 0 AND NOT a.attisdropped
   WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY (p.schemas)
),
-- Functions whose body reads a setting (current_setting): a policy calling one trusts a value any
-- session can change. tenantfence's verifier reads one too, but checks its signature first.
setting_readers AS (
  SELECT p.oid, p.proname::text AS proname
    FROM pg_proc p
    JOIN pg_namespace n ON n.oid = p.pronamespace
    CROSS JOIN fence f
   WHERE p.prosrc ~* 'current_setting'
     AND n.nspname NOT IN ('pg_catalog', 'information_schema')
     AND NOT (n.nspname = f.schema AND p.proname = 'current_tenant' AND pg_get_userbyid(p.proowner) = f.owner)
),
-- Policies on tenant tables. `applies` is false only for policies limited to roles that neither
-- fenced role belongs to (an admin-only policy cannot widen what the app or agent sees).
policies AS (
  SELECT t.oid AS table_oid, t.object, t.sql_name, t.tenant_re, t.tenant_type, t.fence_policy,
         pol.polname::text AS policy, pol.polcmd AS cmd, pol.polpermissive AS permissive,
         CASE pol.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE'
                         WHEN 'd' THEN 'DELETE' ELSE 'ALL' END AS cmd_name,
         pg_get_expr(pol.polqual, pol.polrelid) AS using_expr,
         pg_get_expr(pol.polwithcheck, pol.polrelid) AS check_expr,
         pol.polqual::text AS using_tree, pol.polwithcheck::text AS check_tree,
         (0::oid = ANY (pol.polroles)
          OR NOT EXISTS (SELECT 1 FROM fenced)
          OR EXISTS (SELECT 1 FROM fenced fr, unnest(pol.polroles) AS r(oid) WHERE pg_has_role(fr.oid, r.oid, 'MEMBER'))) AS applies
    FROM tenant_tables t
    JOIN pg_policy pol ON pol.polrelid = t.oid
),
-- One row per policy expression (kind 'using' or 'check'), taken apart:
--   bare      the text with string literals emptied, so quoted parentheses cannot mislead;
--   op/parts  the top-level AND or OR and its operands (pg_get_expr parenthesises every operator);
--   outside   the text with every `( SELECT ...)` masked: what is left runs once per row;
--   pin       how an AND-operand `tenant = x` pins the tenant column: 'trusted' (tenantfence's
--             verifier), 'setting' (a value any session can set), 'other' (another per-statement
--             value), or NULL (no operand pins it);
--   bypass    an OR-operand that reads a setting without the tenant column (`... OR
--             current_setting('app.bypass') = 'on'`);
--   constant  no column, function, subquery or parameter: the same answer for every row.
policy_exprs AS (
  SELECT pol.*, e.kind, e.expr, e.tree, x.*
    FROM policies pol
   CROSS JOIN LATERAL (VALUES ('using', pol.using_expr, pol.using_tree), ('check', pol.check_expr, pol.check_tree)) AS e(kind, expr, tree)
   CROSS JOIN LATERAL (
     WITH src AS (
       SELECT regexp_replace(e.expr, '''(?:[^'']|'''')*''', '''''', 'g') AS bare
     ),
     chars AS (
       SELECT c.pos::int AS pos, c.ch,
              sum(CASE c.ch WHEN '(' THEN 1 WHEN ')' THEN -1 ELSE 0 END) OVER (ORDER BY c.pos)::int AS depth
         FROM src, regexp_split_to_table(src.bare, '') WITH ORDINALITY AS c(ch, pos)
     ),
     seps AS (
       SELECT ch.pos, CASE WHEN substr(src.bare, ch.pos, 5) = ' AND ' THEN 'AND' ELSE 'OR' END AS op,
              CASE WHEN substr(src.bare, ch.pos, 5) = ' AND ' THEN 5 ELSE 4 END AS len
         FROM chars ch, src
        WHERE ch.depth = 1 AND ch.ch = ' '
          AND (substr(src.bare, ch.pos, 5) = ' AND ' OR substr(src.bare, ch.pos, 4) = ' OR ')
     ),
     bounds AS (
       SELECT s.pos + s.len AS first, lead(s.pos, 1, length(src.bare)) OVER (ORDER BY s.pos) - 1 AS last
         FROM (SELECT pos, len FROM seps UNION ALL SELECT 1, 1) AS s, src
     ),
     -- The functions the expression calls, by OID from its node tree (names in the text may be
     -- ambiguous; OIDs are not). Joined from the matches so each tree is scanned once.
     calls AS (
       SELECT DISTINCT m[1]::oid AS oid FROM regexp_matches(coalesce(e.tree, ''), ':funcid (\d+)', 'g') AS m
     ),
     readers AS (
       SELECT coalesce(array_agg(DISTINCT sr.proname), '{}') AS names
         FROM calls JOIN setting_readers sr ON sr.oid = calls.oid
     ),
     per_row AS (
       SELECT coalesce(array_agg(DISTINCT p.proname::text), '{}') AS names
         FROM calls JOIN pg_proc p ON p.oid = calls.oid
        WHERE p.provolatile <> 'i'
     ),
     parts AS (
       SELECT substr(src.bare, b.first, b.last - b.first + 1) AS part
         FROM bounds b, src
        WHERE EXISTS (SELECT 1 FROM seps)
       UNION ALL
       SELECT src.bare FROM src WHERE NOT EXISTS (SELECT 1 FROM seps)
     ),
     pins AS (
       SELECT part, m.rhs,
              CASE
                WHEN m.rhs IS NULL OR m.rhs ~ ('(^|[^\w."])' || pol.tenant_re || '($|[^\w"])') THEN NULL
                WHEN m.rhs ~ '\mcurrent_setting\('
                  OR EXISTS (SELECT 1 FROM readers r, unnest(r.names) AS n(name) WHERE m.rhs ~ ('\m' || n.name || '\(')) THEN 'setting'
                WHEN m.rhs ~ ('\m' || (SELECT schema FROM fence) || '\.current_tenant\(\)') THEN 'trusted'
                WHEN m.rhs ~ '\w\(|\mSELECT\M|\m(CURRENT_USER|SESSION_USER|CURRENT_ROLE)\M' THEN 'other'
              END AS source
         FROM parts
        CROSS JOIN LATERAL (
          SELECT coalesce(
                   substring(part FROM ('^\((?:' || pol.tenant_re || '|\(' || pol.tenant_re || '\)::[^=]+?) = (.+)\)$')),
                   substring(part FROM ('^\((.+) = (?:' || pol.tenant_re || '|\(' || pol.tenant_re || '\)::[^=]+?)\)$'))) AS rhs
        ) AS m
     )
     SELECT src.bare,
            (SELECT min(op) FROM seps) AS op,
            (SELECT array_agg(part) FROM parts) AS parts,
            -- Scalar subqueries masked; the pattern matches parentheses balanced four levels deep,
            -- which covers what pg_get_expr prints for the wrappers policies use.
            regexp_replace(src.bare, '\( SELECT (?:[^()]|\((?:[^()]|\((?:[^()]|\((?:[^()]|\([^()]*\))*\))*\))*\))*\)', '( SELECT # )', 'g') AS outside,
            CASE WHEN (SELECT min(op) FROM seps) = 'OR' THEN NULL
                 ELSE (SELECT min(source) FILTER (WHERE source IS NOT NULL) FROM pins) END AS pin_any,
            (SELECT min(op) FROM seps) = 'OR' AND EXISTS (
              SELECT 1 FROM parts
               WHERE part !~ ('(^|[^\w."])' || pol.tenant_re || '($|[^\w"])')
                 AND (part ~ '\mcurrent_setting\('
                      OR EXISTS (SELECT 1 FROM readers r, unnest(r.names) AS n(name) WHERE part ~ ('\m' || n.name || '\(')))) AS bypass,
            e.tree !~ '\{(VAR|SUBLINK|FUNCEXPR|SQLVALUEFUNCTION|PARAM|AGGREF|WINDOWFUNC|NEXTVALUEEXPR)\M'
              AND e.expr NOT IN ('false', 'NULL::boolean') AS constant,
            (SELECT names FROM per_row) AS volatile_calls,
            (SELECT names FROM readers) AS setting_calls
       FROM src
   ) AS x
   WHERE e.expr IS NOT NULL
)
