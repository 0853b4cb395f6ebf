-- tenantfence_admin is the audited admin path: inside withAdmin a member sees every tenant's rows
-- on tables protected --admin-access. The app and agent roles run tenant SQL and must not be
-- members, directly or through a role they can become: their SQL could record a use and enter it.
SELECT f.rolname AS object,
       format('The %s role %s %s tenantfence_admin, the audited admin role: its SQL can open an admin session and read every tenant''s rows.',
              f.which, f.rolname, CASE WHEN EXISTS (SELECT 1 FROM pg_auth_members m WHERE m.member = f.oid AND m.roleid = a.oid)
                                       THEN 'is a member of' ELSE 'can SET ROLE to' END) AS detail,
       (SELECT string_agg(DISTINCT p.revoke, E'\n' ORDER BY p.revoke) FROM fenced_paths p WHERE p.member = f.oid AND p.target = a.oid) AS remediation,
       '' AS key
  FROM fenced f
  JOIN pg_roles a ON a.rolname = (SELECT admin_role FROM fence)
 WHERE NOT f.rolsuper AND f.oid <> a.oid AND pg_has_role(f.oid, a.oid, 'MEMBER')
