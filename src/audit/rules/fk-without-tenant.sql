-- A foreign key between two tenant tables that does not pair their tenant columns lets a row of
-- tenant A point at a row of tenant B, and its violation error tells A whether B's key exists.
SELECT t.object,
       format('Foreign key %s from %s to %s does not match %s to %s, so a row can reference another tenant''s row and the key check reveals which exist.',
              con.conname, t.object, r.object, t.tenant_sql, r.tenant_sql) AS detail,
       format(E'-- needs a unique key on %6$s\nALTER TABLE %1$s DROP CONSTRAINT %2$I, ADD CONSTRAINT %2$I FOREIGN KEY (%3$s, %4$s) REFERENCES %5$s (%7$s, %8$s)%9$s;',
              t.sql_name, con.conname, t.tenant_sql, k.cols, r.sql_name,
              -- in the comment line: control characters out, or a newline in a name ends it
              regexp_replace(format('%s (%s, %s)', r.sql_name, r.tenant_sql, k.refcols), '[[:cntrl:]]', '?', 'g'),
              r.tenant_sql, k.refcols,
              CASE con.confdeltype WHEN 'c' THEN ' ON DELETE CASCADE' WHEN 'r' THEN ' ON DELETE RESTRICT' WHEN 'n' THEN ' ON DELETE SET NULL' WHEN 'd' THEN ' ON DELETE SET DEFAULT' ELSE '' END
              || CASE con.confupdtype WHEN 'c' THEN ' ON UPDATE CASCADE' WHEN 'r' THEN ' ON UPDATE RESTRICT' WHEN 'n' THEN ' ON UPDATE SET NULL' WHEN 'd' THEN ' ON UPDATE SET DEFAULT' ELSE '' END) AS remediation,
       con.conname::text AS key
  FROM tenant_tables t
  JOIN pg_constraint con ON con.conrelid = t.oid AND con.contype = 'f' AND con.conparentid = 0 -- partitions repeat the parent's key
  JOIN tenant_tables r ON r.oid = con.confrelid
  CROSS JOIN LATERAL (
    SELECT string_agg(quote_ident(ca.attname), ', ' ORDER BY k.ord) AS cols,
           string_agg(quote_ident(ra.attname), ', ' ORDER BY k.ord) AS refcols,
           bool_or(k.attnum = t.tenant_attnum AND k.refattnum = r.tenant_attnum) AS paired
      FROM unnest(con.conkey, con.confkey) WITH ORDINALITY AS k(attnum, refattnum, ord)
      JOIN pg_attribute ca ON ca.attrelid = t.oid AND ca.attnum = k.attnum
      JOIN pg_attribute ra ON ra.attrelid = r.oid AND ra.attnum = k.refattnum
  ) AS k
 WHERE NOT coalesce(k.paired, false)
