-- The read side of policy-write-check-not-tenant: USING decides which existing rows a command
-- sees (SELECT) or touches (UPDATE, DELETE). Permissive policies are OR'ed, so one extra policy
-- whose USING does not pin the tenant column (`tenant_id IS NOT NULL`, `tenant_id <> ...`,
-- `... OR current_user = 'admin'`) shows every tenant's rows whatever tenantfence's policy says.
-- Shared rows are allowed on this side: an OR of pins and `tenant_id IS NULL` passes. Constant
-- expressions, setting bypasses and setting reads are left to their own rules (the verdict).
SELECT e.object,
       format('Policy %s on %s (FOR %s): its USING %s does not pin %s to the current tenant, so a tenant %s other tenants'' rows.',
              e.policy, e.object, e.cmd_name, e.expr, e.tenant_sql,
              CASE e.cmd WHEN 'r' THEN 'reads' WHEN 'w' THEN 'updates' WHEN 'd' THEN 'deletes' ELSE 'reads, updates and deletes' END) AS detail,
       format(E'DROP POLICY IF EXISTS %I ON %s;\n%s', e.policy, e.sql_name, e.fence_policy) AS remediation,
       e.policy AS key
  FROM policy_exprs e
 WHERE e.kind = 'using' AND e.permissive AND e.applies AND e.cmd IN ('r', 'w', 'd', '*')
   AND e.verdict = 'unpinned' AND NOT e.shared_rows
