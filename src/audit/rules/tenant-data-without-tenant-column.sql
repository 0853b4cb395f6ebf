-- A table without the tenant column can still hold tenant data: `order_items` keyed through its
-- parent `orders`. Nothing else looks at it (the table rules start from the tenant column), so with
-- row level security off every role that may read it reads every tenant's line items. A table in
-- the audited schemas is tenant data when a foreign key leads from it to a tenant table, directly
-- or through other such tables (order_item_notes -> order_items -> orders). Reported when RLS is
-- off and the app or agent role (or PUBLIC) may read or write it. The remediation fences it
-- through its parent: a policy that admits a row only when the parent row it references is
-- visible, which the parent's own tenant policy decides.
WITH RECURSIVE tenant_data (oid, parent, fk) AS (
  SELECT c.oid, k.confrelid, k.oid
    FROM pg_constraint k
    JOIN pg_class c ON c.oid = k.conrelid AND c.relkind IN ('r', 'p')
    JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE k.contype = 'f' AND n.nspname = ANY ((SELECT schemas FROM params)::name[])
     AND k.confrelid IN (SELECT oid FROM tenant_tables)
     AND c.oid NOT IN (SELECT oid FROM tenant_tables)
  UNION
  SELECT c.oid, k.confrelid, k.oid
    FROM tenant_data td
    JOIN pg_constraint k ON k.contype = 'f' AND k.confrelid = td.oid
    JOIN pg_class c ON c.oid = k.conrelid AND c.relkind IN ('r', 'p')
    JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname = ANY ((SELECT schemas FROM params)::name[])
     AND c.oid NOT IN (SELECT oid FROM tenant_tables)
),
-- One foreign key per table (the first by name) is enough to fence it through its parent.
chosen AS (
  SELECT DISTINCT ON (td.oid) td.oid, td.parent, k.conname, k.conkey, k.confkey
    FROM tenant_data td
    JOIN pg_constraint k ON k.oid = td.fk
   ORDER BY td.oid, k.conname COLLATE "C"
),
open AS (
  SELECT c.oid, (n.nspname || '.' || c.relname) COLLATE "C" AS object, format('%I.%I', n.nspname, c.relname) AS sql_name,
         pn.nspname || '.' || pc.relname AS parent, format('%I.%I', pn.nspname, pc.relname) AS parent_sql,
         ch.conname,
         (SELECT string_agg(format('p.%I = %I.%I', pa.attname, c.relname, ca.attname), ' AND ' ORDER BY k.i)
            FROM unnest(ch.conkey, ch.confkey) WITH ORDINALITY AS k(child_att, parent_att, i)
            JOIN pg_attribute ca ON ca.attrelid = c.oid AND ca.attnum = k.child_att
            JOIN pg_attribute pa ON pa.attrelid = ch.parent AND pa.attnum = k.parent_att) AS joins,
         (SELECT string_agg(f.rolname, ' and ' ORDER BY f.which) FROM fenced f
           WHERE has_table_privilege(f.oid, c.oid, 'SELECT, INSERT, UPDATE, DELETE')) AS readers
    FROM chosen ch
    JOIN pg_class c ON c.oid = ch.oid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_class pc ON pc.oid = ch.parent
    JOIN pg_namespace pn ON pn.oid = pc.relnamespace
   WHERE NOT c.relrowsecurity
     AND EXISTS (SELECT 1 FROM fenced f WHERE NOT f.rolsuper AND has_table_privilege(f.oid, c.oid, 'SELECT, INSERT, UPDATE, DELETE'))
)
SELECT o.object,
       format('%s has no %s column but references tenant data (%s, through foreign key %s), and row level security is off: %s reach every tenant''s rows in it.',
              o.object, (SELECT tenant_column FROM params), o.parent, o.conname, o.readers) AS detail,
       format(E'ALTER TABLE %1$s ENABLE ROW LEVEL SECURITY;\nALTER TABLE %1$s FORCE ROW LEVEL SECURITY;\nCREATE POLICY %2$I ON %1$s AS PERMISSIVE FOR ALL\n  USING (EXISTS (SELECT 1 FROM %3$s p WHERE %4$s))\n  WITH CHECK (EXISTS (SELECT 1 FROM %3$s p WHERE %4$s));\n%5$s',
              o.sql_name, (SELECT policy FROM fence) || '_parent', o.parent_sql, o.joins,
              regexp_replace('-- better still: add the tenant column, pair it in the foreign key, and run tenantfence protect on ' || o.object,
                             '[[:cntrl:]]', '?', 'g')) AS remediation,
       '' AS key
  FROM open o
