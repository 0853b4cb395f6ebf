-- RLS on with no policy is default-deny for every role that is subject to it: safe, but the table
-- is unusable by the app, which usually means a policy was forgotten.
SELECT t.object,
       format('Row level security is on for %s but it has no policy, so the app and agent see no rows and can write none.', t.object) AS detail,
       t.fence_policy AS remediation,
       '' AS key
  FROM tenant_tables t
 WHERE t.rls_enabled
   AND NOT EXISTS (SELECT 1 FROM pg_policy pol WHERE pol.polrelid = t.oid)
