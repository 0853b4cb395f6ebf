-- A serial or identity column draws from one sequence for all tenants: the gaps between a
-- tenant's own ids tell it how many rows the other tenants created in between.
SELECT t.object,
       format('Column %s of %s takes its values from sequence %s, shared by all tenants: the gaps between one tenant''s ids reveal the others'' volume.',
              a.attname, t.object, sn.nspname || '.' || s.relname) AS detail,
       CASE WHEN d.deptype = 'i'
            THEN format(E'ALTER TABLE %s ALTER COLUMN %I DROP IDENTITY;\n-- then generate ids without a shared counter (uuid: gen_random_uuid()) or per tenant', t.sql_name, a.attname)
            ELSE format(E'ALTER TABLE %s ALTER COLUMN %I DROP DEFAULT;\nDROP SEQUENCE %I.%I;\n-- then generate ids without a shared counter (uuid: gen_random_uuid()) or per tenant', t.sql_name, a.attname, sn.nspname, s.relname)
       END AS remediation,
       a.attname::text AS key
  FROM tenant_tables t
  JOIN pg_depend d ON d.refclassid = 'pg_class'::regclass AND d.refobjid = t.oid AND d.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
  JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
  JOIN pg_namespace sn ON sn.oid = s.relnamespace
  JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
