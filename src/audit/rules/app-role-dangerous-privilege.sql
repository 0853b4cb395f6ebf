-- What the app role may legitimately do is read and write rows, under the policy. Reported here,
-- for the privileges that act on whole tables, schemas, the database or the server instead:
--   TRUNCATE granted to the app role (tables in the audited schemas and in tenantfence; an owner's
--   own right is app-role-owns-table's): it empties a table for every tenant, and no policy applies
--   to it (agent-role-dangerous-privilege reports the agent's);
--   a schema or the database owned by the app or agent role (or a role it can SET ROLE to): a
--   schema's owner may DROP any table in it; the database's owner also owns schema public (through
--   pg_database_owner) and can ALTER DATABASE ... SET settings for every session;
--   SET or ALTER SYSTEM on a parameter granted to either role, a role it belongs to, or PUBLIC
--   (PostgreSQL 15+): superuser-only settings such as session_replication_role (skips the foreign
--   key triggers) or lo_compat_privileges, or the server's configuration. pg_parameter_acl is read
--   through query_to_xml() so the rule parses on servers without it.
WITH app AS (
  SELECT f.* FROM fenced f WHERE f.which = 'app' AND NOT f.rolsuper
),
parameter_grants AS (
  SELECT (xpath('/row/parname/text()', r))[1]::text AS parname,
         (xpath('/row/grantee/text()', r))[1]::text::oid AS grantee,
         (xpath('/row/privilege_type/text()', r))[1]::text AS privilege
    FROM unnest(CASE WHEN current_setting('server_version_num')::int >= 150000
                     THEN xpath('/table/row', query_to_xml(
                            'SELECT a.parname, x.grantee, x.privilege_type FROM pg_catalog.pg_parameter_acl a, pg_catalog.aclexplode(a.paracl) x',
                            false, false, ''))
                     ELSE '{}'::xml[] END) AS r
),
found AS (
  SELECT format('%s.%s', n.nspname, c.relname) AS object,
         format('The app role %s holds TRUNCATE on %s.%s: it empties the table for every tenant, and no policy applies to TRUNCATE.', a.rolname, n.nspname, c.relname) AS detail,
         format('REVOKE TRUNCATE ON %I.%I FROM PUBLIC, %I;', n.nspname, c.relname, a.rolname) AS remediation,
         'truncate' AS key
    FROM app a, pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relkind IN ('r', 'p')
     AND (n.nspname = ANY ((SELECT p.schemas FROM params p)::name[]) OR n.nspname = (SELECT schema FROM fence))
     AND has_table_privilege(a.oid, c.oid, 'TRUNCATE')
     AND NOT pg_has_role(a.oid, c.relowner, 'MEMBER')  -- an owner's rights: app-role-owns-table
  UNION ALL
  SELECT n.nspname, format('Schema %s is owned by %s, which the %s role %s is or can SET ROLE to: a schema''s owner may drop any table in it, every tenant''s rows with it.',
                           n.nspname, pg_get_userbyid(ns.nspowner), f.which, f.rolname),
         format('ALTER SCHEMA %I OWNER TO CURRENT_USER;', n.nspname), 'schema:' || f.rolname
    FROM fenced f
    JOIN pg_namespace ns ON pg_has_role(f.oid, ns.nspowner, 'MEMBER')
    JOIN user_schemas n ON n.oid = ns.oid
   WHERE NOT f.rolsuper AND pg_get_userbyid(ns.nspowner) <> 'pg_database_owner'  -- reported with the database
  UNION ALL
  SELECT d.datname::text, format('Database %s is owned by %s, which the %s role %s is or can SET ROLE to: it owns schema public too (pg_database_owner), so it may drop the tables there, and it can change settings for every session (ALTER DATABASE ... SET).',
                                 d.datname, pg_get_userbyid(d.datdba), f.which, f.rolname),
         format('ALTER DATABASE %I OWNER TO CURRENT_USER;', d.datname), 'database:' || f.rolname
    FROM fenced f
    JOIN pg_database d ON d.datname = current_database() AND pg_has_role(f.oid, d.datdba, 'MEMBER')
   WHERE NOT f.rolsuper
  UNION ALL
  SELECT f.rolname, format('The %s role %s holds %s on parameter %s%s.', f.which, f.rolname, g.privilege, g.parname,
                           CASE WHEN g.grantee = 0 THEN ' (granted to PUBLIC)' WHEN g.grantee <> f.oid THEN format(' (through %s)', pg_get_userbyid(g.grantee)) ELSE '' END),
         format('REVOKE %s ON PARAMETER %s FROM %s;', g.privilege, g.parname, CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(g.grantee)) END),
         'parameter:' || g.parname || ':' || g.privilege
    FROM fenced f
    JOIN parameter_grants g ON g.grantee = 0 OR pg_has_role(f.oid, g.grantee, 'MEMBER')
   WHERE NOT f.rolsuper
)
SELECT object, detail, remediation, key FROM found
