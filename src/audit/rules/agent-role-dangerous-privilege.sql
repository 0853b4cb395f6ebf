-- The agent role runs SQL that nobody reviewed, so it must hold nothing beyond reading (and, with
-- --agent-write, writing) tenant rows: TRUNCATE empties every tenant's table (no policy applies),
-- REFERENCES lets it build foreign keys that probe other tenants' keys, TRIGGER runs code on others'
-- writes, CREATE (schema or database) and TEMP let it shadow objects, large objects have no RLS,
-- and the predefined roles below reach what grants keep it from. pg_read_all_data and
-- pg_write_all_data do not bypass row level security; they read and write every table without it,
-- tenantfence.keys included (signing-key-exposed reports that, for both fenced roles). Table
-- privileges are checked in the audited schemas and always in tenantfence's own.
WITH agent AS (
  SELECT f.* FROM fenced f WHERE f.which = 'agent' AND NOT f.rolsuper
),
tables AS (
  SELECT format('%s.%s', n.nspname, c.relname) AS object, format('%I.%I', n.nspname, c.relname) AS sql_name,
         ARRAY(SELECT pr FROM unnest(ARRAY['TRUNCATE', 'REFERENCES', 'TRIGGER']) AS pr
                WHERE has_table_privilege(a.oid, c.oid, pr) ORDER BY pr COLLATE "C") AS privs, a.rolname
    FROM agent a, pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
     AND (n.nspname = ANY ((SELECT p.schemas FROM params p)::name[]) OR n.nspname = (SELECT schema FROM fence))
),
found AS (
  SELECT object, format('The agent role %s holds %s on %s.', rolname, array_to_string(privs, ', '), object) AS detail,
         format('REVOKE %s ON %s FROM PUBLIC, %I;', array_to_string(privs, ', '), sql_name, rolname) AS remediation,
         array_to_string(privs, ',') AS key
    FROM tables WHERE cardinality(privs) > 0
  UNION ALL
  SELECT s.nspname, format('The agent role %s can CREATE in schema %s, so it can shadow or add objects.', a.rolname, s.nspname),
         format('REVOKE CREATE ON SCHEMA %I FROM PUBLIC, %I;', s.nspname, a.rolname), 'CREATE'
    FROM agent a, user_schemas s
   WHERE has_schema_privilege(a.oid, s.oid, 'CREATE')
  UNION ALL
  SELECT a.rolname, format('The agent role %s holds %s on database %s.', a.rolname, array_to_string(d.privs, ', '), current_database()),
         format('REVOKE %s ON DATABASE %I FROM PUBLIC, %I;', array_to_string(d.privs, ', '), current_database(), a.rolname),
         'database:' || array_to_string(d.privs, ',')
    FROM agent a
   CROSS JOIN LATERAL (SELECT ARRAY(SELECT pr FROM unnest(ARRAY['CREATE', 'TEMPORARY']) AS pr
                                     WHERE has_database_privilege(a.oid, current_database(), pr) ORDER BY pr COLLATE "C") AS privs) AS d
   WHERE cardinality(d.privs) > 0
  UNION ALL
  SELECT a.rolname, format('The agent role %s is a member of %s, which %s.', a.rolname, b.rolname,
                           CASE b.rolname
                             WHEN 'pg_read_all_data' THEN 'reads every table without row level security (tenantfence.keys included) and any table without a grant'
                             WHEN 'pg_write_all_data' THEN 'writes every table without row level security (tenantfence.keys included) and any table without a grant'
                             WHEN 'pg_signal_backend' THEN 'cancels and terminates other tenants'' sessions'
                             WHEN 'pg_maintain' THEN 'runs VACUUM, ANALYZE, CLUSTER, REINDEX, REFRESH and LOCK on every table'
                             ELSE 'reads or writes the server''s files or runs programs on it' END),
         (SELECT string_agg(DISTINCT p.revoke, E'\n' ORDER BY p.revoke) FROM fenced_paths p WHERE p.member = a.oid AND p.target = b.oid),
         'member:' || b.rolname
    FROM agent a
    JOIN pg_roles b ON b.rolname IN ('pg_read_all_data', 'pg_write_all_data', 'pg_read_server_files',
                                     'pg_write_server_files', 'pg_execute_server_program', 'pg_signal_backend', 'pg_maintain')
   WHERE pg_has_role(a.oid, b.oid, 'MEMBER')
  UNION ALL
  SELECT a.rolname, format('The agent role %s can read or write %s large object(s), which have no row level security.', a.rolname, count(*)),
         -- an owner keeps its rights whatever is revoked, so owned objects change owner instead
         string_agg(CASE WHEN lo.lomowner = a.oid THEN format('ALTER LARGE OBJECT %s OWNER TO CURRENT_USER;', lo.oid)
                         ELSE format('REVOKE ALL ON LARGE OBJECT %s FROM PUBLIC, %I;', lo.oid, a.rolname) END, E'\n' ORDER BY lo.oid),
         'large-objects'
    FROM agent a, pg_largeobject_metadata lo
   WHERE lo.lomowner = a.oid
      OR EXISTS (SELECT 1 FROM aclexplode(lo.lomacl) x WHERE x.grantee IN (0, a.oid))
   GROUP BY a.rolname
  UNION ALL
  SELECT a.rolname, 'lo_compat_privileges is on: every role, the agent included, can read and write every large object.',
         'ALTER SYSTEM SET lo_compat_privileges = off; SELECT pg_reload_conf();', 'lo_compat_privileges'
    FROM agent a
   WHERE current_setting('lo_compat_privileges') = 'on'
)
SELECT object, detail, remediation, key FROM found
