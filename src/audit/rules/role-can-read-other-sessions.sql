-- pg_stat_activity shows other sessions' query text (other tenants' values, even context tokens)
-- to members of pg_read_all_stats; pg_monitor includes it, pg_read_all_settings shows every
-- setting, pg_stat_scan_tables runs functions that scan any table. One finding per role.
WITH reach AS (
  SELECT f.oid, f.rolname, f.which, b.oid AS builtin, b.rolname::text AS builtin_name
    FROM fenced f
    JOIN pg_roles b ON b.rolname IN ('pg_read_all_stats', 'pg_monitor', 'pg_read_all_settings', 'pg_stat_scan_tables')
   WHERE NOT f.rolsuper AND pg_has_role(f.oid, b.oid, 'MEMBER')
)
SELECT r.rolname AS object,
       format('The %s role %s is a member of %s, so it can read other sessions'' queries and statistics (other tenants'' values included).',
              r.which, r.rolname, string_agg(r.builtin_name, ', ' ORDER BY r.builtin_name COLLATE "C")) AS detail,
       (SELECT string_agg(DISTINCT p.revoke, E'\n' ORDER BY p.revoke)
          FROM fenced_paths p JOIN reach x ON x.oid = p.member AND x.builtin = p.target
         WHERE p.member = r.oid) AS remediation,
       '' AS key
  FROM reach r
 GROUP BY r.oid, r.rolname, r.which
