-- `tenant_id::text = current_setting(...)`: a cast on the column side means the planner cannot use
-- the index on the tenant column, so every statement filters all tenants' rows. Cast the other side
-- to the column's type instead. Only casts that compute are reported: the node tree shows a cast
-- function (FUNCEXPR with an explicit or implicit cast format) or an I/O coercion over the tenant
-- column. A binary-coercible relabel (varchar to text, a domain to its base type, which is how
-- tenantfence's own policy reads on a domain column) keeps the index usable and prints the same.
SELECT DISTINCT ON (e.table_oid, e.policy)
       e.object,
       format('Policy %s on %s casts the tenant column (%s), so its index cannot be used; cast the other side to %s instead.',
              e.policy, e.object, e.expr, e.tenant_type) AS detail,
       format(E'DROP POLICY IF EXISTS %I ON %s;\n%s', e.policy, e.sql_name, e.fence_policy) AS remediation,
       e.policy AS key
  FROM policy_exprs e
 WHERE e.applies
   AND e.bare ~ ('\(' || e.tenant_re || '\)::')
   AND e.tree ~ ('\{(?:FUNCEXPR [^{}]*:funcformat [12] [^{}]*:args \(|COERCEVIAIO :arg |ARRAYCOERCEEXPR :arg )\{VAR :varno 1 :varattno '
                 || e.tenant_attnum || ' ')
 ORDER BY e.table_oid, e.policy, e.kind DESC
