-- A STABLE or VOLATILE function (current_setting(), the verifier itself) called outside a scalar
-- subquery runs once per row scanned. Wrapped as `(SELECT f())` it becomes an initPlan that runs
-- once per statement, and the comparison can use the tenant index. The functions come from the
-- policy's node tree; volatile_res locates each call in the text as pg_get_expr prints it.
SELECT DISTINCT ON (e.table_oid, e.policy)
       e.object,
       format('Policy %s on %s calls %s once per row (%s); wrap the call as (SELECT ...) so it runs once per statement.',
              e.policy, e.object, array_to_string(calls.names, ', '), e.expr) AS detail,
       format(E'DROP POLICY IF EXISTS %I ON %s;\n%s', e.policy, e.sql_name, e.fence_policy) AS remediation,
       e.policy AS key
  FROM policy_exprs e
 CROSS JOIN LATERAL (
   SELECT array_agg(DISTINCT n.name COLLATE "C" ORDER BY n.name COLLATE "C") AS names
     FROM unnest(e.volatile_calls, e.volatile_res) AS n(name, re)
    WHERE e.outside ~ n.re
 ) AS calls
 WHERE e.applies AND calls.names IS NOT NULL
 ORDER BY e.table_oid, e.policy, e.kind DESC
