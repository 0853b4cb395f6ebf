-- A unique key that leaves out the tenant column is enforced across all tenants: inserting a
-- duplicate fails when another tenant already has the value, which reveals that it exists
-- (an existence oracle), even though the other tenant's row stays unreadable. An exclusion
-- constraint is the same oracle (its conflict error says another row overlaps) unless the tenant
-- column is one of its elements compared WITH =.
SELECT t.object,
       CASE WHEN i.indisexclusion
            THEN format('Exclusion constraint %s on %s (%s) does not compare %s WITH =, so a conflict error tells one tenant that another holds an overlapping value.',
                        x.relname, t.object, cols.list, t.tenant_sql)
            ELSE format('Unique index %s on %s (%s) leaves out %s, so a duplicate-key error tells one tenant that another already has the value.',
                        x.relname, t.object, cols.list, t.tenant_sql)
       END AS detail,
       CASE
         WHEN i.indisexclusion THEN
           -- the definition as Postgres prints it, with the tenant column added as its first element
           format(E'ALTER TABLE %1$s DROP CONSTRAINT %2$I, ADD CONSTRAINT %2$I %3$s%4$s WITH =, %5$s;%6$s',
                  t.sql_name, con.conname, def.head, t.tenant_sql, def.rest,
                  CASE WHEN am.amname = 'gist' THEN E'\n-- a gist index compares the tenant column WITH = through the btree_gist extension' ELSE '' END)
         WHEN cols.has_expression THEN
           format(E'-- %s indexes an expression; recreate it with the tenant column first:\n-- %s',
                  regexp_replace(quote_ident(x.relname), '[[:cntrl:]]', '?', 'g'),
                  regexp_replace(pg_get_indexdef(i.indexrelid), '[[:cntrl:]]', '?', 'g'))
         WHEN con.conname IS NOT NULL THEN
           format(E'-- foreign keys that reference this key must be dropped first and recreated with %6$s\nALTER TABLE %1$s DROP CONSTRAINT %2$I, ADD CONSTRAINT %2$I %3$s (%4$s, %5$s);',
                  t.sql_name, con.conname, CASE con.contype WHEN 'p' THEN 'PRIMARY KEY' ELSE 'UNIQUE' END, t.tenant_sql, cols.list,
                  regexp_replace(t.tenant_sql, '[[:cntrl:]]', '?', 'g'))
         ELSE
           format(E'DROP INDEX %1$I.%2$I;\nCREATE UNIQUE INDEX %2$I ON %3$s (%4$s, %5$s)%6$s;',
                  t.schema, x.relname, t.sql_name, t.tenant_sql, cols.list,
                  coalesce(' WHERE ' || pg_get_expr(i.indpred, i.indrelid), ''))
       END AS remediation,
       x.relname::text AS key
  FROM tenant_tables t
  JOIN pg_index i ON i.indrelid = t.oid AND (i.indisunique OR i.indisexclusion)
  JOIN pg_class x ON x.oid = i.indexrelid
  JOIN pg_am am ON am.oid = x.relam
  LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = t.oid AND con.contype IN ('p', 'u', 'x')
  CROSS JOIN LATERAL (
    -- Key columns only: INCLUDE columns (past indnkeyatts) do not take part in uniqueness. In an
    -- exclusion constraint the tenant column counts only when its operator is = (conexclop).
    SELECT string_agg(coalesce(quote_ident(a.attname), '(expression)'), ', ' ORDER BY k.ord) AS list,
           bool_or(k.attnum = 0) AS has_expression,
           bool_or(k.attnum = t.tenant_attnum AND (NOT i.indisexclusion OR op.oprname = '=')) AS has_tenant
      FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
      LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
      LEFT JOIN pg_operator op ON op.oid = con.conexclop[k.ord]
     WHERE k.ord <= i.indnkeyatts
  ) AS cols
  CROSS JOIN LATERAL (
    SELECT substring(pg_get_constraintdef(con.oid) FROM '^(EXCLUDE USING \S+ \()') AS head,
           substring(pg_get_constraintdef(con.oid) FROM '^EXCLUDE USING \S+ \((.*)$') AS rest
  ) AS def
 WHERE NOT cols.has_tenant
