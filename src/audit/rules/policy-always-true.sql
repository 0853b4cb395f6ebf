-- A permissive policy whose USING or WITH CHECK is a constant (`true`, `1 = 1`) admits every row,
-- and permissive policies are OR'ed: one of them opens the table to every tenant.
SELECT e.object,
       format('Policy %s on %s (FOR %s) has %s %s, which is the same for every row: any tenant %s every tenant''s rows.',
              e.policy, e.object, e.cmd_name, CASE e.kind WHEN 'using' THEN 'USING' ELSE 'WITH CHECK' END, e.expr,
              CASE e.kind WHEN 'using' THEN 'reads' ELSE 'writes' END) AS detail,
       format(E'DROP POLICY IF EXISTS %I ON %s;\n%s', e.policy, e.sql_name, e.fence_policy) AS remediation,
       e.policy || '/' || e.kind AS key
  FROM policy_exprs e
 WHERE e.permissive AND e.applies AND e.constant
