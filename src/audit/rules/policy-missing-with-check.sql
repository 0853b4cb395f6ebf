-- A FOR ALL or FOR UPDATE policy without WITH CHECK is checked with its USING on write. That is
-- safe when USING pins the tenant, but it is implicit: someone who later widens USING for reads
-- (shared rows, say) silently widens writes too. Writing WITH CHECK out keeps the two apart. Only
-- a USING with no verdict of its own is reported (a bypass or an unpinned USING has its own rule),
-- and the fix is the verified-tenant predicate, never a copy of USING: a copy would carry
-- whatever USING holds into the write check.
SELECT e.object,
       format('Policy %s on %s (FOR %s) has no WITH CHECK: Postgres checks written rows with its USING (%s). Safe while USING pins the tenant; spell it out so a later change to reads cannot widen writes.',
              e.policy, e.object, e.cmd_name, e.expr) AS detail,
       format('ALTER POLICY %I ON %s WITH CHECK (%s);', e.policy, e.sql_name, e.fence_predicate) AS remediation,
       e.policy AS key
  FROM policy_exprs e
 WHERE e.permissive AND e.applies AND e.kind = 'using' AND e.cmd IN ('w', '*') AND e.check_expr IS NULL
   AND e.verdict IS NULL
