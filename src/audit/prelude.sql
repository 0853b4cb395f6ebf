-- The vocabulary every rule shares, prepended by the runner as the first CTEs of each rule
-- (a rule is `SELECT object, detail, remediation, key FROM ...` that may use these names).
-- Parameters: $1 schemas (text[]), $2 tenant column, $3 app role, $4 agent role. They are bind
-- parameters, never spliced. Unreferenced CTEs are not executed (PostgreSQL 12+), so a rule pays
-- only for what it reads. The runner opens the list with WITH RECURSIVE (setting_readers and view_reads recurse).
-- Text that ends up inside a `--` comment of a remediation has its control characters replaced
-- (`[[:cntrl:]]`): a newline in a quoted name would end the comment and run the rest as SQL.
params AS (
  SELECT $1::text[] AS schemas, $2::text AS tenant_column, $3::text AS app_role, $4::text AS agent_role
),
-- tenantfence's own names (src/sql/roles.ts; a test keeps the two in step).
fence AS (
  SELECT 'tenantfence'::text AS schema, 'tenantfence_owner'::text AS owner, 'tenantfence_isolation'::text AS policy,
         'tenantfence_admin'::text AS admin_role
),
-- The app and agent roles, when they exist: the roles that must stay inside the fence.
fenced AS (
  SELECT r.oid, r.rolname::text COLLATE "C" AS rolname, r.rolsuper, r.rolbypassrls, r.rolcreaterole, w.which
    FROM params p
   CROSS JOIN LATERAL (VALUES ('app', p.app_role), ('agent', p.agent_role)) AS w(which, name)
    JOIN pg_roles r ON r.rolname = w.name
),
-- How a fenced role reaches another role: one row per (fenced role, role reached, role granted to
-- it directly on the way), with the REVOKE that cuts the path. REVOKE needs the direct grant, not
-- the role reached, so rules aggregate these rows: string_agg(DISTINCT revoke ...).
fenced_paths AS (
  SELECT f.oid AS member, t.oid AS target, format('REVOKE %I FROM %I;', g.rolname, f.rolname) COLLATE "C" AS revoke
    FROM fenced f
    JOIN pg_auth_members m ON m.member = f.oid
    JOIN pg_roles g ON g.oid = m.roleid
    JOIN pg_roles t ON pg_has_role(g.oid, t.oid, 'MEMBER')
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
         -- "C" collation: every ORDER BY and string_agg over names sorts by code point, the same
         -- on every server whatever its locale (deterministic output).
         (n.nspname || '.' || c.relname) COLLATE "C" AS object,
         format('%I.%I', n.nspname, c.relname) AS sql_name,
         c.relowner, pg_get_userbyid(c.relowner)::text AS owner,
         c.relrowsecurity AS rls_enabled, c.relforcerowsecurity AS rls_forced,
         a.attnum AS tenant_attnum, format_type(a.atttypid, a.atttypmod) AS tenant_type,
         quote_ident(a.attname) AS tenant_sql,
         -- The tenant column as pg_get_expr prints it, escaped for use inside a regular expression.
         regexp_replace(quote_ident(a.attname), '([.^$*+?()\[\]{}|\\])', '\\\1', 'g') AS tenant_re,
         -- tenantfence's policy for this table, and its predicate, as markers the runner replaces
         -- with what src/sql/policy.ts renders (one renderer for protect and every remediation).
         -- The marker carries the run's random nonce, so a table name cannot forge one.
         concat(E'\x01', current_setting('tenantfence.audit_nonce', true), ':policy:', c.oid, E'\x01') AS fence_policy,
         concat(E'\x01', current_setting('tenantfence.audit_nonce', true), ':predicate:', c.oid, E'\x01') AS fence_predicate
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    CROSS JOIN params p
    CROSS JOIN fence f
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = p.tenant_column AND a.attnum > 0 AND NOT a.attisdropped
   WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY (p.schemas)
),
-- Views and materialized views with every relation they read, followed down through the views
-- and materialized views they read. `through_matview`: the path crosses a materialized view (a
-- copy: the tables' policies do not apply to reading it).
view_reads (view_oid, rel_oid, through_matview) AS (
  SELECT DISTINCT r.ev_class, d.refobjid, false
    FROM pg_rewrite r
    JOIN pg_class v ON v.oid = r.ev_class AND v.relkind IN ('v', 'm')
    JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
                    AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> r.ev_class
  UNION
  SELECT vr.view_oid, d.refobjid, vr.through_matview OR mid.relkind = 'm'
    FROM view_reads vr
    JOIN pg_class mid ON mid.oid = vr.rel_oid AND mid.relkind IN ('v', 'm')
    JOIN pg_rewrite r ON r.ev_class = mid.oid
    JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
                    AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> r.ev_class
),
-- Code a policy can run besides its own text: user functions (their source, and the parsed tree
-- of SQL-standard `RETURN`/`BEGIN ATOMIC` bodies, whose prosrc is empty) and views (their parsed
-- query). tenantfence's verifier reads a setting too, but verifies a signature first: left out.
code AS (
  SELECT 'f'::text AS kind, p.oid, p.proname::text AS name, p.prosrc AS src, calls.funcs, calls.rels
    FROM pg_proc p
    JOIN pg_namespace n ON n.oid = p.pronamespace
   CROSS JOIN fence f
   -- prosqlbody exists from PostgreSQL 14; read through to_jsonb so this parses on older servers.
   CROSS JOIN LATERAL (SELECT to_jsonb(p) ->> 'prosqlbody' AS tree) AS body
   CROSS JOIN LATERAL (
     SELECT ARRAY(SELECT m[1]::oid FROM regexp_matches(body.tree, ':(?:op)?funcid (\d+)', 'g') AS m) AS funcs,
            ARRAY(SELECT m[1]::oid FROM regexp_matches(body.tree, ':relid (\d+)', 'g') AS m) AS rels
   ) AS calls
   WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
     AND NOT (n.nspname = f.schema AND p.proname = 'current_tenant' AND pg_get_userbyid(p.proowner) = f.owner)
  UNION ALL
  SELECT 'r', c.oid, c.relname::text, NULL,
         ARRAY(SELECT m[1]::oid FROM regexp_matches(r.ev_action::text, ':(?:op)?funcid (\d+)', 'g') AS m),
         ARRAY(SELECT m[1]::oid FROM regexp_matches(r.ev_action::text, ':relid (\d+)', 'g') AS m)
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_rewrite r ON r.ev_class = c.oid AND r.rulename = '_RETURN'
   WHERE c.relkind = 'v' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
),
-- Everything that reads a setting (a value any session changes with SET or set_config()): the
-- built-ins (current_setting, pg_settings), code whose source reads one (SHOW only runs from a
-- string, hence the quote before it), then, to a fixed point, code that calls or selects from
-- something already here: by OID in a parsed tree, by name in source text. The source match is
-- loose (case-insensitive, quoted or not): a false match can only add a finding.
--   print_re   how pg_get_expr prints a call (function) or a reference (relation), as a regex;
--   source_re  how source text calls or names it.
setting_readers (kind, oid, name, print_re, source_re) AS (
  SELECT x.kind, x.oid, x.name,
         '(^|[^\w$])' || e.quoted || CASE x.kind WHEN 'f' THEN '\(' ELSE '($|[^\w$(])' END,
         '(^|[^\w$])"?' || e.escaped || CASE x.kind WHEN 'f' THEN '"?\s*\(' ELSE '"?($|[^\w$(])' END
    FROM (
      SELECT 'f'::text AS kind, p.oid, p.proname::text AS name FROM pg_proc p
       WHERE p.pronamespace = 'pg_catalog'::regnamespace AND p.proname IN ('current_setting', 'pg_show_all_settings')
      UNION ALL
      SELECT 'r', 'pg_catalog.pg_settings'::regclass::oid, 'pg_settings'
      UNION ALL
      SELECT c.kind, c.oid, c.name FROM code c
       WHERE c.src ~* '\m(current_setting|pg_settings|pg_show_all_settings)\M|[''$]\s*show\s'
    ) AS x
   CROSS JOIN LATERAL (
     SELECT regexp_replace(quote_ident(x.name), '([.^$*+?()\[\]{}|\\])', '\\\1', 'g') AS quoted,
            regexp_replace(x.name, '([.^$*+?()\[\]{}|\\])', '\\\1', 'g') AS escaped
   ) AS e
  UNION
  SELECT c.kind, c.oid, c.name,
         '(^|[^\w$])' || e.quoted || CASE c.kind WHEN 'f' THEN '\(' ELSE '($|[^\w$(])' END,
         '(^|[^\w$])"?' || e.escaped || CASE c.kind WHEN 'f' THEN '"?\s*\(' ELSE '"?($|[^\w$(])' END
    FROM code c
    JOIN setting_readers sr
      ON CASE sr.kind WHEN 'f' THEN sr.oid = ANY (c.funcs) ELSE sr.oid = ANY (c.rels) END
      OR c.src ~* sr.source_re
   CROSS JOIN LATERAL (
     SELECT regexp_replace(quote_ident(c.name), '([.^$*+?()\[\]{}|\\])', '\\\1', 'g') AS quoted,
            regexp_replace(c.name, '([.^$*+?()\[\]{}|\\])', '\\\1', 'g') AS escaped
   ) AS e
),
-- Policies on tenant tables. `applies` is false only for policies limited to roles that neither
-- fenced role belongs to (an admin-only policy cannot widen what the app or agent sees).
policies AS (
  SELECT t.oid AS table_oid, t.object, t.sql_name, t.tenant_re, t.tenant_type, t.tenant_attnum, t.tenant_sql,
         t.fence_policy, t.fence_predicate,
         pol.polname::text COLLATE "C" AS policy, pol.polcmd AS cmd, pol.polpermissive AS permissive, pol.polroles AS roles,
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
-- What each policy that applies to a fenced role runs, followed through the code it reaches: the
-- functions and relations its expressions name (by OID, from the node tree), then, to a fixed
-- point, what those functions and views call or read (by OID from parsed bodies and view trees,
-- by name from source text: loose, case-insensitive, qualified or not, so a name that is merely
-- mentioned counts; that can add a finding, never hide one). tenantfence's verifier is not in
-- `code`, so the walk stops there. kind: 'f' function, 'r' relation (table, view, ...).
policy_reach (table_oid, policy, kind, oid) AS (
  SELECT pol.table_oid, pol.policy, CASE m[1] WHEN 'relid' THEN 'r' ELSE 'f' END, m[2]::oid
    FROM policies pol
   CROSS JOIN LATERAL regexp_matches(coalesce(pol.using_tree, '') || ' ' || coalesce(pol.check_tree, ''),
                                     ':(funcid|opfuncid|relid) (\d+)', 'g') AS m
   WHERE pol.applies
  UNION
  SELECT pr.table_oid, pr.policy, x.kind, x.oid
    FROM policy_reach pr
    JOIN code c ON c.kind = pr.kind AND c.oid = pr.oid
   CROSS JOIN LATERAL (
     SELECT 'f'::text, f FROM unnest(c.funcs) AS f
     UNION ALL
     SELECT 'r', r FROM unnest(c.rels) AS r
     UNION ALL
     SELECT 'r', rel.oid FROM pg_class rel JOIN user_schemas n ON n.oid = rel.relnamespace
      WHERE c.src IS NOT NULL AND rel.relkind IN ('r', 'p', 'v', 'm', 'f') AND n.nspname <> (SELECT schema FROM fence)
        AND c.src ~* ('(^|[^\w$])"?' || regexp_replace(rel.relname, '([.^$*+?()\[\]{}|\\])', '\\\1', 'g') || '"?($|[^\w$(])')
     UNION ALL
     SELECT 'f', fn.oid FROM code fn
      WHERE c.src IS NOT NULL AND fn.kind = 'f' AND fn.oid <> c.oid
        AND c.src ~* ('(^|[^\w$])"?' || regexp_replace(fn.name, '([.^$*+?()\[\]{}|\\])', '\\\1', 'g') || '"?\s*\(')
   ) AS x(kind, oid)
),
-- One row per policy expression (kind 'using' or 'check'), taken apart:
--   bare      the text with string literals emptied, so quoted parentheses cannot mislead;
--   op/parts  the top-level AND or OR and its operands (pg_get_expr parenthesises every operator);
--   outside   the text with every `( SELECT ...)` masked: what is left runs once per row;
--   pins_*    an AND-operand `tenant = x` pins the tenant column to tenantfence's verifier
--             (trusted), to something that reads a setting (setting), or to anything per-statement
--             (pinned: a function call, a subquery, current_user);
--   shared_rows  an OR of pins and `tenant IS NULL` (a tenant's rows plus rows of no tenant);
--   bypass    an OR-operand that reads a setting without the tenant column (`... OR
--             current_setting('app.bypass') = 'on'`);
--   reads_setting  the expression calls or selects from a setting reader anywhere (from its tree);
--   constant  no column, function, subquery or parameter: the same answer for every row.
-- Which setting readers and functions an expression uses comes from its node tree, by OID; text
-- matching (print_re, names escaped and quoted as pg_get_expr prints them) only locates them in
-- an operand.
policy_terms AS (
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
     refs AS (
       SELECT DISTINCT m[1] AS what, m[2]::oid AS oid
         FROM regexp_matches(coalesce(e.tree, ''), ':(funcid|opfuncid|relid) (\d+)', 'g') AS m
     ),
     readers AS (
       SELECT coalesce(array_agg(DISTINCT sr.print_re), '{}') AS res
         FROM refs JOIN setting_readers sr ON sr.oid = refs.oid AND (refs.what = 'relid') = (sr.kind = 'r')
     ),
     per_row AS (
       SELECT coalesce(array_agg(p.proname::text ORDER BY p.proname COLLATE "C"), '{}') AS names,
              coalesce(array_agg('(^|[^\w$])' || regexp_replace(quote_ident(p.proname), '([.^$*+?()\[\]{}|\\])', '\\\1', 'g') || '\('
                                 ORDER BY p.proname COLLATE "C"), '{}') AS res
         FROM refs JOIN pg_proc p ON p.oid = refs.oid
        WHERE refs.what = 'funcid' AND p.provolatile <> 'i'
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
                WHEN EXISTS (SELECT 1 FROM readers r, unnest(r.res) AS re WHERE m.rhs ~ re) THEN 'setting'
                WHEN m.rhs ~ ('\m' || (SELECT schema FROM fence) || '\.current_tenant\(\)') THEN 'trusted'
                WHEN m.rhs ~ '\w\(|\mSELECT\M|\m(CURRENT_USER|SESSION_USER|CURRENT_ROLE)\M' THEN 'other'
              END AS source,
              part ~ ('^\((?:' || pol.tenant_re || '|\(' || pol.tenant_re || '\)::[^ ]+) IS NULL\)$') AS is_null
         FROM parts
        CROSS JOIN LATERAL (
          SELECT coalesce(
                   substring(part FROM ('^\((?:' || pol.tenant_re || '|\(' || pol.tenant_re || '\)::[^=]+?) = (.+)\)$')),
                   substring(part FROM ('^\((.+) = (?:' || pol.tenant_re || '|\(' || pol.tenant_re || '\)::[^=]+?)\)$'))) AS rhs
        ) AS m
     ),
     top AS (
       SELECT coalesce((SELECT min(op) FROM seps), '') AS op
     )
     SELECT src.bare, top.op,
            (SELECT array_agg(part) FROM parts) AS parts,
            -- Scalar subqueries masked; the pattern matches parentheses balanced four levels deep,
            -- which covers what pg_get_expr prints for the wrappers policies use.
            regexp_replace(src.bare, '\( SELECT (?:[^()]|\((?:[^()]|\((?:[^()]|\((?:[^()]|\([^()]*\))*\))*\))*\))*\)', '( SELECT # )', 'g') AS outside,
            top.op <> 'OR' AND EXISTS (SELECT 1 FROM pins WHERE source = 'trusted') AS pins_trusted,
            top.op <> 'OR' AND EXISTS (SELECT 1 FROM pins WHERE source = 'setting') AS pins_setting,
            top.op <> 'OR' AND EXISTS (SELECT 1 FROM pins WHERE source IS NOT NULL) AS pinned,
            top.op = 'OR' AND EXISTS (SELECT 1 FROM pins WHERE source IS NOT NULL)
              AND NOT EXISTS (SELECT 1 FROM pins WHERE source IS NULL AND NOT is_null) AS shared_rows,
            top.op = 'OR' AND EXISTS (
              SELECT 1 FROM parts, readers r, unnest(r.res) AS re
               WHERE part !~ ('(^|[^\w."])' || pol.tenant_re || '($|[^\w"])') AND part ~ re) AS bypass,
            cardinality((SELECT res FROM readers)) > 0 AS reads_setting,
            e.tree !~ '\{(VAR|SUBLINK|FUNCEXPR|SQLVALUEFUNCTION|PARAM|AGGREF|WINDOWFUNC|NEXTVALUEEXPR)\M'
              AND e.expr NOT IN ('false', 'NULL::boolean') AS constant,
            (SELECT names FROM per_row) AS volatile_calls,
            (SELECT res FROM per_row) AS volatile_res
       FROM src, top
   ) AS x
   WHERE e.expr IS NOT NULL
),
-- Each expression's isolation verdict, at most one, so one flaw is reported by one rule:
--   constant  a permissive policy that admits every row            policy-always-true
--   bypass    an OR-ed operand reading a setting                    policy-bypass-guc
--   setting   a pin to a setting anywhere, or (permissive) a setting read with no verified pin
--             beside it: a membership lookup, a CASE switch, ...   policy-tamperable-context
--   unpinned  (permissive) no top-level AND-operand pins the tenant   policy-read-not-tenant,
--                                                                  policy-write-check-not-tenant
-- A setting pin next to a verified one is still 'setting': not exploitable while the verified
-- pin stays, but the policy trusts a settable value, and dropping the other pin later opens it.
policy_exprs AS (
  SELECT t.*,
         CASE
           WHEN t.permissive AND t.constant THEN 'constant'
           WHEN t.bypass THEN 'bypass'
           WHEN t.pins_setting OR (t.permissive AND t.reads_setting AND NOT t.pins_trusted) THEN 'setting'
           WHEN t.permissive AND NOT t.pinned THEN 'unpinned'
         END AS verdict
    FROM policy_terms t
)
