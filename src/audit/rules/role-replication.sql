-- REPLICATION lets a role stream the WAL: logical decoding (a replication connection, or the SQL
-- functions pg_logical_slot_get_changes() and friends) returns every row written, every tenant's,
-- and row level security never applies to it. The SQL functions check the current role, so a role
-- that can SET ROLE to one with REPLICATION decodes too. A role rule (scope: role): init and
-- protect refuse such a role through it, and the audit reports it on a database changed since.
SELECT f.rolname AS object,
       CASE WHEN r.oid = f.oid
            THEN format('The %s role %s has REPLICATION: logical decoding streams every tenant''s rows to it, and row level security does not apply.', f.which, f.rolname)
            ELSE format('The %s role %s can SET ROLE to %s, which has REPLICATION: logical decoding streams every tenant''s rows, and row level security does not apply.', f.which, f.rolname, r.rolname)
       END AS detail,
       CASE WHEN r.oid = f.oid THEN format('ALTER ROLE %I NOREPLICATION;', f.rolname)
            ELSE (SELECT string_agg(DISTINCT p.revoke, E'\n' ORDER BY p.revoke) FROM fenced_paths p WHERE p.member = f.oid AND p.target = r.oid)
       END AS remediation,
       r.rolname::text AS key
  FROM fenced f
  JOIN pg_roles r ON r.rolreplication AND pg_has_role(f.oid, r.oid, 'MEMBER')
 WHERE NOT f.rolsuper
