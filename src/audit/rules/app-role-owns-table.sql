-- A table's owner can ALTER TABLE ... DISABLE ROW LEVEL SECURITY or NO FORCE, drop the policy, or
-- read around it before FORCE; so can every member of the owning role (a member can SET ROLE to it,
-- or, on PostgreSQL 16+ with SET FALSE but ADMIN, grant itself that: what CREATEROLE gives a role
-- over the roles it creates). The fenced roles must own no tenant table, directly or as a member.
-- A table tenantfence protects counts whatever its tenant column is called (init checks its roles
-- with this rule before it knows the column).
WITH owned AS (
  SELECT t.object, t.sql_name, t.owner, t.relowner FROM tenant_tables t
  UNION
  SELECT (n.nspname || '.' || c.relname) COLLATE "C", format('%I.%I', n.nspname, c.relname), pg_get_userbyid(c.relowner)::text, c.relowner
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE EXISTS (SELECT 1 FROM pg_policy pol, fence f WHERE pol.polrelid = c.oid AND pol.polname = f.policy)
)
SELECT t.object,
       format('%s is owned by %s, which the %s role %s %s: the owner can switch the table''s policies off.',
              t.object, t.owner, f.which, f.rolname,
              CASE WHEN t.relowner = f.oid THEN 'is' ELSE 'is a member of' END) AS detail,
       format(E'ALTER TABLE %s OWNER TO CURRENT_USER; -- or to a dedicated NOLOGIN migration role', t.sql_name) AS remediation,
       f.which AS key
  FROM owned t
  JOIN fenced f ON NOT f.rolsuper AND pg_has_role(f.oid, t.relowner, 'MEMBER')
