-- Every tenant-scoped query filters on the tenant column first; without an index that leads with
-- it, each statement scans the whole table (all tenants) before the policy discards rows.
SELECT t.object,
       format('No index on %s starts with the tenant column, so every tenant''s query scans all tenants'' rows.', t.object) AS detail,
       format('CREATE INDEX ON %s (%s);', t.sql_name, t.tenant_sql) AS remediation,
       '' AS key
  FROM tenant_tables t
 WHERE NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = t.oid AND i.indkey[0] = t.tenant_attnum)
