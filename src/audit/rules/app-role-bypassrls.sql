-- BYPASSRLS skips every policy. The attribute is not inherited, but a member can SET ROLE to a
-- BYPASSRLS role, so a granted one is as bad as having it. (Superusers: app-role-superuser.)
SELECT f.rolname AS object,
       CASE WHEN f.rolbypassrls
            THEN format('The %s role %s has BYPASSRLS: no policy applies to it.', f.which, f.rolname)
            ELSE format('The %s role %s can SET ROLE to %s, which has BYPASSRLS: no policy applies to it then.', f.which, f.rolname, b.rolname)
       END AS detail,
       CASE WHEN f.rolbypassrls THEN format('ALTER ROLE %I NOBYPASSRLS;', f.rolname)
            ELSE (SELECT string_agg(DISTINCT p.revoke, E'\n' ORDER BY p.revoke) FROM fenced_paths p WHERE p.member = f.oid AND p.target = b.oid)
       END AS remediation,
       coalesce(b.rolname::text, '') AS key
  FROM fenced f
  LEFT JOIN pg_roles b ON NOT f.rolbypassrls AND b.rolbypassrls AND NOT b.rolsuper AND pg_has_role(f.oid, b.oid, 'MEMBER')
 WHERE NOT f.rolsuper AND (f.rolbypassrls OR b.oid IS NOT NULL)
