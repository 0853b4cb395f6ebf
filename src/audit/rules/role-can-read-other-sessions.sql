-- pg_stat_activity shows other sessions' query text (other tenants' values, even context tokens)
-- to members of pg_read_all_stats; pg_monitor includes it, pg_read_all_settings shows every
-- setting, pg_stat_scan_tables runs functions that scan any table.
SELECT f.rolname AS object,
       format('The %s role %s is a member of %s, so it can read other sessions'' queries and statistics (other tenants'' values included).',
              f.which, f.rolname, b.rolname) AS detail,
       (SELECT string_agg(format('REVOKE %I FROM %I;', g.rolname, f.rolname), E'\n' ORDER BY g.rolname)
          FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
         WHERE m.member = f.oid AND pg_has_role(g.oid, b.oid, 'MEMBER')) AS remediation,
       b.rolname::text AS key
  FROM fenced f
  JOIN pg_roles b ON b.rolname IN ('pg_read_all_stats', 'pg_monitor', 'pg_read_all_settings', 'pg_stat_scan_tables')
 WHERE NOT f.rolsuper AND pg_has_role(f.oid, b.oid, 'MEMBER')
