-- `current_setting('app.tenant_id')::uuid`: once a pooled session has seen the setting, RESET or
-- the end of a SET LOCAL leaves it as '' (not NULL), and ''::uuid raises an error on every query
-- of that connection. NULLIF(current_setting(..., true), '') turns it into "no tenant" instead.
SELECT DISTINCT ON (e.table_oid, e.policy)
       e.object,
       format('Policy %s on %s casts current_setting() without NULLIF (%s): on a pooled connection after RESET the setting is '''' and the cast fails.',
              e.policy, e.object, e.expr) AS detail,
       format(E'DROP POLICY IF EXISTS %I ON %s;\n%s', e.policy, e.sql_name, e.fence_policy) AS remediation,
       e.policy AS key
  FROM policy_exprs e
 WHERE e.applies
   AND e.bare ~ '\(current_setting\([^()]*\)\)::(?!text\M)'
 ORDER BY e.table_oid, e.policy, e.kind DESC
