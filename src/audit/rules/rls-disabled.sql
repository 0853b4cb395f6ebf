-- A table with the tenant column and row level security off: every role that can read it reads
-- every tenant's rows.
SELECT t.object,
       format('Row level security is off on %s, so every role with SELECT reads every tenant''s rows.', t.object) AS detail,
       format(E'ALTER TABLE %1$s ENABLE ROW LEVEL SECURITY;\nALTER TABLE %1$s FORCE ROW LEVEL SECURITY;\n-- then add the tenant policy: tenantfence protect %2$s', t.sql_name, t.object) AS remediation,
       '' AS key
  FROM tenant_tables t
 WHERE NOT t.rls_enabled
