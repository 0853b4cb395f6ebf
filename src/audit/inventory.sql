-- The isolation map of the HTML report: one row per tenant table. "fenced" means a permissive
-- policy whose USING pins the tenant column to tenantfence's verified tenant.
SELECT t.object, t.rls_enabled, t.rls_forced,
       ARRAY(SELECT pol.polname::text FROM pg_policy pol WHERE pol.polrelid = t.oid ORDER BY pol.polname COLLATE "C") AS policies,
       EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = t.oid AND i.indkey[0] = t.tenant_attnum) AS tenant_index,
       EXISTS (SELECT 1 FROM policy_exprs e
                WHERE e.table_oid = t.oid AND e.kind = 'using' AND e.permissive AND e.pins_trusted) AS fenced
  FROM tenant_tables t
 ORDER BY t.object COLLATE "C"  -- code-point order on every server, whatever its locale
