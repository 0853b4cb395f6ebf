-- `tenant_id::text = current_setting(...)`: a cast on the column side means the planner cannot use
-- the index on the tenant column, so every statement filters all tenants' rows. Cast the other side
-- to the column's type instead. (varchar to text is a relabel that keeps the index usable.)
SELECT DISTINCT ON (e.table_oid, e.policy)
       e.object,
       format('Policy %s on %s casts the tenant column (%s), so its index cannot be used; cast the other side to %s instead.',
              e.policy, e.object, e.expr, e.tenant_type) AS detail,
       format(E'DROP POLICY %I ON %s;\n%s', e.policy, e.sql_name, e.fence_policy) AS remediation,
       e.policy AS key
  FROM policy_exprs e
 WHERE e.applies
   AND CASE WHEN e.tenant_type LIKE 'character varying%'
            THEN regexp_replace(e.bare, '\(' || e.tenant_re || '\)::text\M', '', 'g') ~ ('\(' || e.tenant_re || '\)::')
            ELSE e.bare ~ ('\(' || e.tenant_re || '\)::')
       END
 ORDER BY e.table_oid, e.policy, e.kind DESC
