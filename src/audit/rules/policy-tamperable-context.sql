-- A policy that compares the tenant column with a setting (`current_setting('app.tenant_id')`, or
-- a function or view that reads one, however deep) trusts a value any session can change with SET
-- or set_config(): SQL written by an agent switches tenant in one statement. So does a permissive
-- policy that reads a setting anywhere (a membership lookup keyed by `app.user`, a CASE switch)
-- without also pinning the tenant to tenantfence.current_tenant(), which verifies a signature with
-- a key those roles cannot read. The verdict comes from the prelude (policy_exprs).
SELECT DISTINCT ON (e.table_oid, e.policy)
       e.object,
       CASE WHEN e.pins_setting
            THEN format('Policy %s on %s compares the tenant column with a setting any session can change (%s), so SQL that runs set_config() reads and writes as another tenant.',
                        e.policy, e.object, e.expr)
            ELSE format('Policy %s on %s (FOR %s) decides which rows it admits from a setting any session can change (%s) and does not pin the tenant column to the verified tenant, so SQL that runs set_config() reaches other tenants'' rows.',
                        e.policy, e.object, e.cmd_name, e.expr)
       END AS detail,
       format(E'DROP POLICY IF EXISTS %I ON %s;\n%s', e.policy, e.sql_name, e.fence_policy) AS remediation,
       e.policy AS key
  FROM policy_exprs e
 WHERE e.applies AND e.verdict = 'setting'
 ORDER BY e.table_oid, e.policy, e.kind DESC  -- report USING, the read side, when both qualify
