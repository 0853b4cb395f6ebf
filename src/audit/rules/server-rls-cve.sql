-- Known PostgreSQL bugs that let a query get around row level security, by server version. The
-- versions are data: `cves` (the majors affected) and `fixes` (the first fixed minor per major, as
-- server_version_num), copied from the PostgreSQL release notes cited in server-rls-cve.md. A
-- major below the first one with a fix is out of support and affected for good. The server's
-- version is read once, in `server` (test/audit/server-cve.test.ts runs this file with other
-- versions in its place, to check the table and the comparison).
-- CVE-2024-4317 is also checked in the catalog: its fix changes the pg_stats_ext and
-- pg_stats_ext_exprs views (rows only for tables the caller's role owns: pg_has_role(c.relowner,
-- 'USAGE')), and a cluster created before the fix keeps the old views in every database until
-- fix-CVE-2024-4317.sql is run there, whatever the minor version.
WITH server AS (
  SELECT current_setting('server_version_num')::int AS num
),
cves (cve, first_major, last_major, what) AS (
  VALUES
    ('CVE-2023-2455', 9, 15, 'a role-specific policy can be applied under the wrong role when an inlined set-returning SQL function is planned under one role and run under another (SECURITY DEFINER functions, SET ROLE on a shared connection)'),
    ('CVE-2024-4317', 14, 16, 'pg_stats_ext and pg_stats_ext_exprs show most-common values of tables the reader cannot read'),
    ('CVE-2024-10976', 9, 17, 'a cached plan that reaches a row-security table through a subquery, CTE or security-invoker view is reused under another role, returning rows the policy should hide'),
    ('CVE-2025-8713', 9, 17, 'a leaky operator reads planner statistics (most-common values, histograms) of rows that row level security hides, through partitions and inheritance children')
),
fixes (cve, major, fixed) AS (
  VALUES
    ('CVE-2023-2455', 11, 110020), ('CVE-2023-2455', 12, 120015), ('CVE-2023-2455', 13, 130011),
    ('CVE-2023-2455', 14, 140008), ('CVE-2023-2455', 15, 150003),
    ('CVE-2024-4317', 14, 140012), ('CVE-2024-4317', 15, 150007), ('CVE-2024-4317', 16, 160003),
    ('CVE-2024-10976', 12, 120021), ('CVE-2024-10976', 13, 130017), ('CVE-2024-10976', 14, 140014),
    ('CVE-2024-10976', 15, 150009), ('CVE-2024-10976', 16, 160005), ('CVE-2024-10976', 17, 170001),
    ('CVE-2025-8713', 13, 130022), ('CVE-2025-8713', 14, 140019), ('CVE-2025-8713', 15, 150014),
    ('CVE-2025-8713', 16, 160010), ('CVE-2025-8713', 17, 170006)
),
version AS (
  -- 9.6 is 90600 (major 9 here: every 9.x is out of support); 15.7 is 150007
  SELECT s.num, s.num / 10000 AS major,
         CASE WHEN s.num >= 100000 THEN format('%s.%s', s.num / 10000, s.num % 10000)
              ELSE format('%s.%s.%s', s.num / 10000, s.num / 100 % 100, s.num % 100) END AS text
    FROM server s
),
stats_views AS (
  SELECT bool_and(pg_get_viewdef(v.oid) ~ 'pg_has_role\(c\.relowner') AS fixed
    FROM pg_class v
   WHERE v.relnamespace = 'pg_catalog'::regnamespace AND v.relname IN ('pg_stats_ext', 'pg_stats_ext_exprs')
),
affected AS (
  SELECT c.cve, c.what, v.text, f.fixed,
         CASE WHEN f.fixed IS NOT NULL THEN format('%s.%s', f.fixed / 10000, f.fixed % 10000) END AS fixed_text,
         v.num < coalesce(f.fixed, 2147483647) AS by_version
    FROM cves c
   CROSS JOIN version v
    LEFT JOIN fixes f ON f.cve = c.cve AND f.major = v.major
   WHERE v.major BETWEEN c.first_major AND c.last_major
)
SELECT a.cve AS object,
       CASE WHEN a.by_version AND a.fixed IS NULL
              THEN format('PostgreSQL %s is affected by %s and its major version received no fix: %s.', a.text, a.cve, a.what)
            WHEN a.by_version
              THEN format('PostgreSQL %s is affected by %s (fixed in %s): %s.', a.text, a.cve, a.fixed_text, a.what)
            ELSE format('PostgreSQL %s has the fix for %s, but this database''s pg_stats_ext views predate it (the cluster was created before the fix and fix-CVE-2024-4317.sql was not run here): %s.', a.text, a.cve, a.what)
       END AS detail,
       concat_ws(E'\n',
         CASE WHEN a.by_version AND a.fixed IS NULL THEN '-- upgrade to a supported major version of PostgreSQL'
              WHEN a.by_version THEN format('-- upgrade PostgreSQL to %s or later (a minor release: new binaries and a restart, no dump/restore)', a.fixed_text) END,
         CASE WHEN a.cve = 'CVE-2024-4317'
              THEN '-- then, as a superuser, in every database of the cluster (template0 and template1 included, per the release notes): psql -f "$(pg_config --sharedir)/fix-CVE-2024-4317.sql"' END) AS remediation,
       '' AS key
  FROM affected a
 WHERE a.by_version
    OR (a.cve = 'CVE-2024-4317' AND NOT coalesce((SELECT fixed FROM stats_views), true))
