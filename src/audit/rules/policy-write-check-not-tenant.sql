-- The check Postgres applies to new and updated rows is WITH CHECK, or USING when a FOR ALL or
-- FOR UPDATE policy has no WITH CHECK (an INSERT policy without one admits nothing). If that check
-- does not pin the tenant column to the current tenant, a tenant can write rows into another
-- tenant's space. Constant checks, setting bypasses and checks that read a setting have their
-- own, more precise rules (the prelude's verdict gives each expression to one rule).
WITH effective AS (
  SELECT DISTINCT ON (e.table_oid, e.policy) e.*
    FROM policy_exprs e
   WHERE e.permissive AND e.applies AND e.cmd IN ('a', 'w', '*')
     AND (e.kind = 'check' OR (e.check_expr IS NULL AND e.cmd IN ('w', '*')))
   ORDER BY e.table_oid, e.policy, e.kind  -- 'check' sorts before 'using'
)
SELECT e.object,
       format('Policy %s on %s (FOR %s): its write check %s %s does not pin %s to the current tenant, so a tenant can write rows as another tenant.',
              e.policy, e.object, e.cmd_name,
              CASE e.kind WHEN 'check' THEN 'WITH CHECK' ELSE '(USING, reused because there is no WITH CHECK)' END,
              e.expr, e.tenant_sql) AS detail,
       format(E'DROP POLICY IF EXISTS %I ON %s;\n%s', e.policy, e.sql_name, e.fence_policy) AS remediation,
       e.policy AS key
  FROM effective e
 WHERE e.verdict = 'unpinned'
