-- ALTER DEFAULT PRIVILEGES ... GRANT ... ON TABLES hands every table a role creates later to the
-- grantee at CREATE TABLE, with row level security still off: until someone protects it (or
-- forever, for a table nobody thinks of as tenant data) the app or agent reads every tenant's rows.
-- tenantfence protect grants what each table needs; a default grant to PUBLIC, a fenced role or a
-- role one belongs to only opens the window. Sequences, functions and types are not reported.
SELECT pg_get_userbyid(d.defaclrole)::text COLLATE "C" AS object,
       format('Default privileges give %s %s on every table %s creates%s, before row level security is on or a policy exists.',
              CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END,
              string_agg(a.privilege_type, ', ' ORDER BY a.privilege_type COLLATE "C"),
              pg_get_userbyid(d.defaclrole),
              CASE WHEN n.nspname IS NULL THEN '' ELSE format(' in schema %s', n.nspname) END) AS detail,
       format('ALTER DEFAULT PRIVILEGES FOR ROLE %I%s REVOKE ALL ON TABLES FROM %s;',
              pg_get_userbyid(d.defaclrole),
              CASE WHEN n.nspname IS NULL THEN '' ELSE format(' IN SCHEMA %I', n.nspname) END,
              CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END) AS remediation,
       coalesce(n.nspname::text, '') || ':' || CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee)::text END AS key
  FROM pg_default_acl d
  LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace
 CROSS JOIN LATERAL aclexplode(d.defaclacl) AS a
 WHERE d.defaclobjtype = 'r'
   AND a.grantee <> d.defaclrole
   AND (a.grantee = 0 OR EXISTS (SELECT 1 FROM fenced f WHERE NOT f.rolsuper AND pg_has_role(f.oid, a.grantee, 'MEMBER')))
 GROUP BY d.defaclrole, n.nspname, a.grantee
