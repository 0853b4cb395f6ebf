-- A LEAKPROOF function may run before the row level security filter: the planner pushes quals
-- built from leakproof functions and operators below the policy (security barrier), so one that
-- raises an error, a notice or a log line carrying its argument shows other tenants' values to
-- whoever writes `WHERE leaky(col)`. Only a superuser can mark a function LEAKPROOF, and nothing
-- checks the claim. Reported when the app or agent role may execute it (PUBLIC may, by default).
-- Extension members are left out: their extension vouches for them.
SELECT format('%s.%s(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)) AS object,
       format('Function %s.%s(%s) is LEAKPROOF and %s may call it: a query''s condition on it runs before the tenant policy filters rows, so any error or notice it raises can show other tenants'' values.',
              n.nspname, p.proname, pg_get_function_identity_arguments(p.oid),
              (SELECT string_agg(f.rolname, ' and ' ORDER BY f.which) FROM fenced f WHERE has_function_privilege(f.oid, p.oid, 'EXECUTE'))) AS detail,
       format('ALTER FUNCTION %I.%I(%s) NOT LEAKPROOF;', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)) AS remediation,
       '' AS key
  FROM pg_proc p
  JOIN user_schemas n ON n.oid = p.pronamespace
 WHERE p.proleakproof
   AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
   AND EXISTS (SELECT 1 FROM fenced f WHERE NOT f.rolsuper AND has_function_privilege(f.oid, p.oid, 'EXECUTE'))
