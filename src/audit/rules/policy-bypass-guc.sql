-- `tenant_id = ... OR current_setting('app.bypass_rls') = 'on'`: a bypass switch kept in a
-- setting that any session can flip, so the fence is one set_config() away from being off.
SELECT DISTINCT ON (e.table_oid, e.policy)
       e.object,
       format('Policy %s on %s ORs the tenant condition with a setting any session can change (%s): SQL that sets it sees every tenant.',
              e.policy, e.object, e.expr) AS detail,
       format(E'DROP POLICY IF EXISTS %I ON %s;\n%s', e.policy, e.sql_name, e.fence_policy) AS remediation,
       e.policy AS key
  FROM policy_exprs e
 WHERE e.applies AND e.bypass
 ORDER BY e.table_oid, e.policy, e.kind DESC
