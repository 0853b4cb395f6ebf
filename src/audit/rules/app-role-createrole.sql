-- Before PostgreSQL 16, CREATEROLE may grant membership in any role but a superuser: a fenced role
-- that has it (or can SET ROLE to a role that has it) grants itself a tenant table's owner and
-- switches row level security off, or grants itself pg_read_all_data, pg_write_all_data or
-- pg_execute_server_program. From 16 on, CREATEROLE administers only the roles it created, and an
-- owner role it reaches that way is a membership that app-role-owns-table reports, so this rule
-- checks older servers only (release notes 16, "Restrict the privileges of CREATEROLE").
SELECT f.rolname AS object,
       CASE WHEN f.rolcreaterole
            THEN format('The %s role %s has CREATEROLE: on this server (before PostgreSQL 16) it can grant itself any role but a superuser, a tenant table''s owner included, and switch row level security off.',
                        f.which, f.rolname)
            ELSE format('The %s role %s can SET ROLE to %s, which has CREATEROLE: on this server (before PostgreSQL 16) that grants any role but a superuser, a tenant table''s owner included.',
                        f.which, f.rolname, c.rolname)
       END AS detail,
       CASE WHEN f.rolcreaterole THEN format('ALTER ROLE %I NOCREATEROLE;', f.rolname)
            ELSE (SELECT string_agg(DISTINCT p.revoke, E'\n' ORDER BY p.revoke) FROM fenced_paths p WHERE p.member = f.oid AND p.target = c.oid)
       END AS remediation,
       coalesce(c.rolname::text, '') AS key
  FROM fenced f
  LEFT JOIN pg_roles c ON NOT f.rolcreaterole AND c.rolcreaterole AND NOT c.rolsuper AND pg_has_role(f.oid, c.oid, 'MEMBER')
 WHERE NOT f.rolsuper AND (f.rolcreaterole OR c.oid IS NOT NULL)
   AND current_setting('server_version_num')::int < 160000
