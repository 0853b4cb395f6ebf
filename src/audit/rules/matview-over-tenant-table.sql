-- A materialized view is a copy made by its owner: row level security does not apply to reading
-- it, so whoever may select from it reads every tenant's rows that went into it. Reported when the
-- fenced roles (or PUBLIC) can read it.
WITH RECURSIVE reads (view_oid, rel_oid) AS (
  SELECT DISTINCT r.ev_class, d.refobjid
    FROM pg_rewrite r
    JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
                    AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> r.ev_class
    JOIN pg_class m ON m.oid = r.ev_class AND m.relkind = 'm'
  UNION
  SELECT reads.view_oid, d.refobjid
    FROM reads
    JOIN pg_class mid ON mid.oid = reads.rel_oid AND mid.relkind IN ('v', 'm')
    JOIN pg_rewrite r ON r.ev_class = mid.oid
    JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
                    AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> r.ev_class
)
SELECT n.nspname || '.' || m.relname AS object,
       format('Materialized view %s holds rows of %s, and row level security does not apply to it: every role that can select from it reads all tenants.',
              n.nspname || '.' || m.relname, string_agg(DISTINCT t.object, ', ')) AS detail,
       format(E'REVOKE ALL ON %I.%I FROM %s;\n-- or replace it with a view WITH (security_invoker = true), or a tenant table with a policy',
              n.nspname, m.relname,
              array_to_string(ARRAY['PUBLIC'] || ARRAY(SELECT quote_ident(f.rolname) FROM fenced f ORDER BY f.which), ', ')) AS remediation,
       '' AS key
  FROM reads
  JOIN tenant_tables t ON t.oid = reads.rel_oid
  JOIN pg_class m ON m.oid = reads.view_oid
  JOIN pg_namespace n ON n.oid = m.relnamespace
 WHERE EXISTS (SELECT 1 FROM fenced f WHERE has_table_privilege(f.oid, m.oid, 'SELECT'))
    OR EXISTS (SELECT 1 FROM aclexplode(m.relacl) a WHERE a.grantee = 0 AND a.privilege_type = 'SELECT')
 GROUP BY n.nspname, m.relname
