-- A policy that compares the tenant column with a setting (`current_setting('app.tenant_id')`, or
-- a function that returns one) trusts a value any session can change with SET or set_config():
-- SQL written by an agent switches tenant in one statement. tenantfence.current_tenant() verifies a
-- signature with a key those roles cannot read, so a changed setting yields no tenant at all.
SELECT DISTINCT ON (e.table_oid, e.policy)
       e.object,
       format('Policy %s on %s compares the tenant column with a setting any session can change (%s), so SQL that runs set_config() reads and writes as another tenant.',
              e.policy, e.object, e.expr) AS detail,
       format(E'DROP POLICY %I ON %s;\n%s', e.policy, e.sql_name, e.fence_policy) AS remediation,
       e.policy AS key
  FROM policy_exprs e
 WHERE e.applies AND e.pin_any = 'setting'
 ORDER BY e.table_oid, e.policy, e.kind DESC  -- report USING, the read side, when both qualify
