-- Every request logs in as the same app role, and PostgreSQL lets a role act on its own other
-- sessions: signal them (pg_terminate_backend, pg_cancel_backend), read their SQL text, literals
-- included (pg_stat_get_activity under pg_stat_activity, pg_stat_get_backend_activity,
-- pg_stat_statements), and use the large objects they created (the lo_* server functions). One
-- finding per function that PUBLIC, the app role or the agent role is granted EXECUTE on in this
-- database; memberships that reach them are role-can-read-other-sessions' and the dangerous-
-- privilege rules'. The list is init's (src/sql/lockdown.ts; a test keeps the two in step), and
-- so is the remediation: revoke, then give the monitoring functions back to the built-in role
-- made for them.
WITH listed (name, grant_to) AS (
  VALUES ('pg_cancel_backend', 'pg_signal_backend'), ('pg_terminate_backend', 'pg_signal_backend'),
         ('pg_stat_get_activity', 'pg_read_all_stats'), ('pg_stat_get_backend_activity', 'pg_read_all_stats'),
         ('pg_stat_statements', 'pg_read_all_stats'),
         ('lo_close', NULL), ('lo_creat', NULL), ('lo_create', NULL), ('lo_export', NULL), ('lo_from_bytea', NULL),
         ('lo_get', NULL), ('lo_import', NULL), ('lo_lseek', NULL), ('lo_lseek64', NULL), ('lo_open', NULL),
         ('lo_put', NULL), ('lo_tell', NULL), ('lo_tell64', NULL), ('lo_truncate', NULL), ('lo_truncate64', NULL),
         ('lo_unlink', NULL), ('loread', NULL), ('lowrite', NULL)
),
exposed AS (
  SELECT format('%s.%s(%s)', n.nspname, p.proname, oidvectortypes(p.proargtypes)) COLLATE "C" AS object,
         format('%I.%I(%s)', n.nspname, p.proname, oidvectortypes(p.proargtypes)) AS sql_name,
         p.proname::text AS name, l.grant_to,
         string_agg(DISTINCT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE f.rolname END, ', ') AS grantees
    FROM pg_proc p
    JOIN pg_namespace n ON n.oid = p.pronamespace
    JOIN listed l ON l.name = p.proname
   CROSS JOIN LATERAL aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
    LEFT JOIN fenced f ON f.oid = a.grantee
   WHERE (n.nspname = 'pg_catalog' OR p.proname = 'pg_stat_statements')
     AND a.privilege_type = 'EXECUTE' AND (a.grantee = 0 OR f.oid IS NOT NULL)
     AND EXISTS (SELECT 1 FROM fenced x WHERE NOT x.rolsuper)
   GROUP BY 1, 2, 3, 4
)
SELECT e.object,
       format('%s may execute %s, which %s. Every request logs in as the same app role, so SQL in one request can use it on another''s.',
              e.grantees, e.object,
              CASE WHEN e.grant_to = 'pg_signal_backend' THEN 'signals backends of the same role: terminates or cancels other tenants'' requests'
                   WHEN e.grant_to = 'pg_read_all_stats' THEN 'shows the SQL text of sessions of the same role: other tenants'' queries and their literals'
                   ELSE 'uses large objects: they belong to the role that created them, so every tenant''s are the shared role''s, with no row level security' END) AS detail,
       format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC%s;', e.sql_name,
              (SELECT string_agg(format(', %I', f.rolname), '' ORDER BY f.which) FROM fenced f))
       || CASE WHEN e.grant_to IS NULL THEN '' ELSE format(E'\nGRANT EXECUTE ON FUNCTION %s TO %I;', e.sql_name, e.grant_to) END AS remediation,
       '' AS key
  FROM exposed e
