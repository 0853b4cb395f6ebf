-- A superuser skips row level security entirely (FORCE included), and so does any role that can
-- SET ROLE to one. Checked for both fenced roles: the agent being one is worse than the app.
SELECT f.rolname AS object,
       CASE WHEN f.rolsuper
            THEN format('The %s role %s is a superuser: row level security never applies to it.', f.which, f.rolname)
            ELSE format('The %s role %s can SET ROLE to superuser %s, and row level security never applies to a superuser.', f.which, f.rolname, s.rolname)
       END AS detail,
       CASE WHEN f.rolsuper THEN format('ALTER ROLE %I NOSUPERUSER;', f.rolname)
            ELSE (SELECT string_agg(DISTINCT p.revoke, E'\n' ORDER BY p.revoke) FROM fenced_paths p WHERE p.member = f.oid AND p.target = s.oid)
       END AS remediation,
       coalesce(s.rolname::text, '') AS key
  FROM fenced f
  LEFT JOIN pg_roles s ON NOT f.rolsuper AND s.rolsuper AND pg_has_role(f.oid, s.oid, 'MEMBER')
 WHERE f.rolsuper OR s.oid IS NOT NULL
