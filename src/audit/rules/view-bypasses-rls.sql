-- A view runs with its owner's rights unless it has security_invoker (PostgreSQL 15+). When that
-- owner is not subject to the tenant policy (a superuser, BYPASSRLS, or the table's owner without
-- FORCE), the view returns every tenant's rows to anyone who may select from it. Views over views
-- are followed down to the tables. Only views the fenced roles (or PUBLIC) can read are reported.
WITH RECURSIVE reads (view_oid, rel_oid) AS (
  SELECT DISTINCT r.ev_class, d.refobjid
    FROM pg_rewrite r
    JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
                    AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> r.ev_class
    JOIN pg_class v ON v.oid = r.ev_class AND v.relkind = 'v'
  UNION
  SELECT reads.view_oid, d.refobjid
    FROM reads
    JOIN pg_class mid ON mid.oid = reads.rel_oid AND mid.relkind = 'v'
    JOIN pg_rewrite r ON r.ev_class = mid.oid
    JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
                    AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> r.ev_class
)
SELECT n.nspname || '.' || v.relname AS object,
       format('View %s reads %s as its owner %s, who is %s, so it returns every tenant''s rows.',
              n.nspname || '.' || v.relname, t.object, o.rolname,
              CASE WHEN o.rolsuper THEN 'a superuser' WHEN o.rolbypassrls THEN 'BYPASSRLS'
                   ELSE 'the table owner and the table does not FORCE row level security' END) AS detail,
       format('ALTER VIEW %I.%I SET (security_invoker = true);', n.nspname, v.relname) AS remediation,
       t.object AS key
  FROM reads
  JOIN tenant_tables t ON t.oid = reads.rel_oid
  JOIN pg_class v ON v.oid = reads.view_oid
  JOIN pg_namespace n ON n.oid = v.relnamespace
  JOIN pg_roles o ON o.oid = v.relowner
 WHERE NOT coalesce('security_invoker=true' = ANY (v.reloptions) OR 'security_invoker=on' = ANY (v.reloptions)
                    OR 'security_invoker=1' = ANY (v.reloptions), false)
   AND (o.rolsuper OR o.rolbypassrls OR (pg_has_role(v.relowner, t.relowner, 'USAGE') AND NOT t.rls_forced))
   AND (EXISTS (SELECT 1 FROM fenced f WHERE has_table_privilege(f.oid, v.oid, 'SELECT'))
        OR EXISTS (SELECT 1 FROM aclexplode(v.relacl) a WHERE a.grantee = 0 AND a.privilege_type = 'SELECT'))
