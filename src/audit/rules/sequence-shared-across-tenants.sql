-- A serial or identity column draws from one sequence for all tenants: the gaps between a
-- tenant's own ids tell it how many rows the other tenants created in between. So does any
-- column whose DEFAULT calls nextval() on a sequence it does not own (found through the default's
-- dependency on the sequence, pg_attrdef -> pg_class).
WITH uses AS (
  -- serial ('a': the column owns the sequence) and identity ('i')
  SELECT d.refobjid AS table_oid, d.refobjsubid AS attnum, d.objid AS seq, d.deptype::text AS how
    FROM pg_depend d
   WHERE d.refclassid = 'pg_class'::regclass AND d.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
  UNION ALL
  -- DEFAULT nextval('seq'): the default depends on the sequence
  SELECT ad.adrelid, ad.adnum, d.refobjid, 'n'
    FROM pg_attrdef ad
    JOIN pg_depend d ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid AND d.refclassid = 'pg_class'::regclass
)
SELECT DISTINCT ON (t.oid, a.attnum)
       t.object,
       format('Column %s of %s takes its values from sequence %s, shared by all tenants: the gaps between one tenant''s ids reveal the others'' volume.',
              a.attname, t.object, sn.nspname || '.' || s.relname) AS detail,
       CASE u.how
         WHEN 'i' THEN format(E'ALTER TABLE %s ALTER COLUMN %I DROP IDENTITY;\n-- then generate ids without a shared counter (uuid: gen_random_uuid()) or per tenant', t.sql_name, a.attname)
         WHEN 'a' THEN format(E'ALTER TABLE %s ALTER COLUMN %I DROP DEFAULT;\nDROP SEQUENCE %I.%I;\n-- then generate ids without a shared counter (uuid: gen_random_uuid()) or per tenant', t.sql_name, a.attname, sn.nspname, s.relname)
         -- a sequence the column does not own may serve others: leave it
         ELSE format(E'ALTER TABLE %s ALTER COLUMN %I DROP DEFAULT;\n-- then generate ids without a shared counter (uuid: gen_random_uuid()) or per tenant', t.sql_name, a.attname)
       END AS remediation,
       a.attname::text AS key
  FROM tenant_tables t
  JOIN uses u ON u.table_oid = t.oid
  JOIN pg_class s ON s.oid = u.seq AND s.relkind = 'S'
  JOIN pg_namespace sn ON sn.oid = s.relnamespace
  JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = u.attnum
 ORDER BY t.oid, a.attnum, u.how  -- 'a' and 'i' before 'n': an owned sequence gets the fuller fix
