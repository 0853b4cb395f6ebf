-- A view runs with its owner's rights unless it has security_invoker (PostgreSQL 15+). When the
-- tenant policy does not bind that owner (a superuser, BYPASSRLS, the table's owner without FORCE),
-- or a permissive policy that applies to the owner but not to the fenced roles does not pin the
-- tenant (`CREATE POLICY reporting_all ... TO reporting USING (true)`), the view returns every
-- tenant's rows to anyone who may select from it. Views over views are followed down to the
-- tables (view_reads, in the prelude). Only views the fenced roles (or PUBLIC) can read are reported.
WITH candidates AS (
  SELECT v.oid AS view_oid, n.nspname || '.' || v.relname AS object, format('%I.%I', n.nspname, v.relname) AS sql_name,
         t.object AS table_object, o.rolname::text AS owner,
         CASE WHEN o.rolsuper THEN 'a superuser' WHEN o.rolbypassrls THEN 'BYPASSRLS'
              WHEN pg_has_role(v.relowner, t.relowner, 'USAGE') AND NOT t.rls_forced
                THEN 'the table owner and the table does not FORCE row level security' END AS unbound,
         -- Policies apply to a role through its inherited privileges (check_role_for_policy uses
         -- has_privs_of_role), hence USAGE; the view's owner cannot SET ROLE while it runs.
         (SELECT string_agg(DISTINCT e.policy, ', ' ORDER BY e.policy)
            FROM policy_exprs e
           WHERE e.table_oid = t.oid AND e.kind = 'using' AND e.permissive AND NOT e.applies AND e.cmd IN ('r', '*')
             AND (e.verdict IN ('constant', 'bypass', 'setting') OR (e.verdict = 'unpinned' AND NOT e.shared_rows))
             AND (0::oid = ANY (e.roles)
                  OR EXISTS (SELECT 1 FROM unnest(e.roles) AS r(oid) WHERE pg_has_role(v.relowner, r.oid, 'USAGE')))) AS loose
    FROM view_reads vr
    JOIN tenant_tables t ON t.oid = vr.rel_oid
    JOIN pg_class v ON v.oid = vr.view_oid AND v.relkind = 'v'
    JOIN pg_namespace n ON n.oid = v.relnamespace
    JOIN pg_roles o ON o.oid = v.relowner
   WHERE NOT vr.through_matview
     -- security_invoker is a boolean reloption, stored as written ('yes', 'on', '1', 'true', ...)
     AND NOT coalesce((SELECT substr(opt, length('security_invoker=') + 1)::boolean
                         FROM unnest(v.reloptions) AS opt WHERE opt LIKE 'security\_invoker=%'), false)
     AND (EXISTS (SELECT 1 FROM fenced f WHERE has_table_privilege(f.oid, v.oid, 'SELECT'))
          OR EXISTS (SELECT 1 FROM aclexplode(v.relacl) a WHERE a.grantee = 0 AND a.privilege_type = 'SELECT'))
)
SELECT c.object,
       CASE WHEN c.unbound IS NOT NULL
            THEN format('View %s reads %s as its owner %s, who is %s, so it returns every tenant''s rows.',
                        c.object, c.table_object, c.owner, c.unbound)
            ELSE format('View %s reads %s as its owner %s, to whom policy %s applies without pinning the tenant, so it returns every tenant''s rows.',
                        c.object, c.table_object, c.owner, c.loose)
       END AS detail,
       format('ALTER VIEW %s SET (security_invoker = true);', c.sql_name) AS remediation,
       c.table_object AS key
  FROM candidates c
 WHERE c.unbound IS NOT NULL OR c.loose IS NOT NULL
