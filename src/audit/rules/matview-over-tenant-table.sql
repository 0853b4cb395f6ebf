-- A materialized view is a copy made by its owner: row level security does not apply to reading
-- it, so whoever may select from it reads every tenant's rows that went into it. Reported when the
-- fenced roles (or PUBLIC) can read it. view_reads (prelude) follows views and materialized views.
SELECT n.nspname || '.' || m.relname AS object,
       format('Materialized view %s holds rows of %s, and row level security does not apply to it: every role that can select from it reads all tenants.',
              n.nspname || '.' || m.relname, string_agg(DISTINCT t.object, ', ' ORDER BY t.object)) AS detail,
       format(E'REVOKE ALL ON %I.%I FROM %s;\n-- or replace it with a view WITH (security_invoker = true), or a tenant table with a policy',
              n.nspname, m.relname,
              array_to_string(ARRAY['PUBLIC'] || ARRAY(SELECT quote_ident(f.rolname) FROM fenced f ORDER BY f.which), ', ')) AS remediation,
       '' AS key
  FROM view_reads vr
  JOIN tenant_tables t ON t.oid = vr.rel_oid
  JOIN pg_class m ON m.oid = vr.view_oid AND m.relkind = 'm'
  JOIN pg_namespace n ON n.oid = m.relnamespace
 WHERE EXISTS (SELECT 1 FROM fenced f WHERE has_table_privilege(f.oid, m.oid, 'SELECT'))
    OR EXISTS (SELECT 1 FROM aclexplode(m.relacl) a WHERE a.grantee = 0 AND a.privilege_type = 'SELECT')
 GROUP BY n.nspname, m.relname
