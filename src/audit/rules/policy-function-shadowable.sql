-- A function a policy calls runs with the caller's search_path unless it sets its own, and
-- relations are looked up in pg_temp first unless the path lists it later. A policy helper that
-- names a table without its schema (`SELECT org FROM memberships WHERE ...`) then reads whatever
-- relation of that name the caller put first: a temporary table (TEMP on the database) or one in
-- a schema it can create in, which makes the policy true for any tenant it likes. SQL-standard
-- bodies (BEGIN ATOMIC, RETURN) are resolved when the function is created and are left out.
-- Reported for functions a policy reaches (see policy_reach) when a fenced role can create such a
-- relation. The fix pins search_path with pg_temp last: the schemas of the relations it names.
WITH helpers AS (
  SELECT DISTINCT pr.oid
    FROM policy_reach pr
    JOIN pg_proc p ON p.oid = pr.oid AND pr.kind = 'f'
    JOIN pg_language l ON l.oid = p.prolang AND l.lanname NOT IN ('c', 'internal')
   WHERE to_jsonb(p) ->> 'prosqlbody' IS NULL
     AND NOT p.prosecdef  -- security-definer-search-path reports those, with the same fix
),
unpinned AS (
  SELECT h.oid, c.src,
         (SELECT substr(x, length('search_path=') + 1) FROM unnest(p.proconfig) AS x WHERE x LIKE 'search\_path=%') AS path
    FROM helpers h
    JOIN pg_proc p ON p.oid = h.oid
    JOIN code c ON c.kind = 'f' AND c.oid = h.oid
),
shadowable AS (
  SELECT u.oid,
         array_agg(DISTINCT rel.relname::text ORDER BY rel.relname::text) AS names,
         array_agg(DISTINCT quote_ident(n.nspname) ORDER BY quote_ident(n.nspname)) AS schemas
    FROM unpinned u
    JOIN pg_class rel ON rel.relkind IN ('r', 'p', 'v', 'm', 'f')
    JOIN user_schemas n ON n.oid = rel.relnamespace
   WHERE (u.path IS NULL OR btrim(btrim((string_to_array(u.path, ','))[array_length(string_to_array(u.path, ','), 1)]), '"') <> 'pg_temp')
     AND u.src ~* ('(^|[^\w$."])"?' || regexp_replace(rel.relname, '([.^$*+?()\[\]{}|\\])', '\\\1', 'g') || '"?($|[^\w$(."])')
   GROUP BY u.oid
),
creators AS (
  SELECT string_agg(f.rolname, ' and ' ORDER BY f.which) AS roles
    FROM fenced f
   WHERE NOT f.rolsuper
     AND (has_database_privilege(f.oid, current_database(), 'TEMP')
          OR has_database_privilege(f.oid, current_database(), 'CREATE')
          OR EXISTS (SELECT 1 FROM user_schemas s WHERE has_schema_privilege(f.oid, s.oid, 'CREATE')))
)
SELECT format('%s.%s(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)) AS object,
       format('Function %s.%s(%s), called by a tenant policy, names %s without a schema and does not pin search_path with pg_temp last; %s can create a relation of that name that it finds first (a temporary table), and so choose what the policy sees.',
              n.nspname, p.proname, pg_get_function_identity_arguments(p.oid), array_to_string(s.names, ', '), cr.roles) AS detail,
       format('ALTER FUNCTION %I.%I(%s) SET search_path = pg_catalog, %s, pg_temp;',
              n.nspname, p.proname, pg_get_function_identity_arguments(p.oid), array_to_string(s.schemas, ', ')) AS remediation,
       '' AS key
  FROM shadowable s
  JOIN pg_proc p ON p.oid = s.oid
  JOIN pg_namespace n ON n.oid = p.pronamespace
 CROSS JOIN creators cr
 WHERE cr.roles IS NOT NULL
