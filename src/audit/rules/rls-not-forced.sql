-- RLS is on but not forced: the table owner skips every policy, and so does any session that
-- reaches the owner (a migration role reused by the app, SET ROLE, a SECURITY DEFINER function).
SELECT t.object,
       format('Row level security on %s is enabled but not forced, so its owner %s skips every policy.', t.object, t.owner) AS detail,
       format('ALTER TABLE %s FORCE ROW LEVEL SECURITY;', t.sql_name) AS remediation,
       '' AS key
  FROM tenant_tables t
 WHERE t.rls_enabled AND NOT t.rls_forced
