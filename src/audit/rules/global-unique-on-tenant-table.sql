-- A unique key that leaves out the tenant column is enforced across all tenants: inserting a
-- duplicate fails when another tenant already has the value, which reveals that it exists
-- (an existence oracle), even though the other tenant's row stays unreadable.
SELECT t.object,
       format('Unique index %s on %s (%s) leaves out %s, so a duplicate-key error tells one tenant that another already has the value.',
              x.relname, t.object, cols.list, t.tenant_sql) AS detail,
       CASE
         WHEN cols.has_expression THEN
           format(E'-- %s indexes an expression; recreate it with the tenant column first:\n-- %s', x.relname, pg_get_indexdef(i.indexrelid))
         WHEN con.conname IS NOT NULL THEN
           format(E'-- foreign keys that reference this key must be dropped first and recreated with %4$s\nALTER TABLE %1$s DROP CONSTRAINT %2$I, ADD CONSTRAINT %2$I %3$s (%4$s, %5$s);',
                  t.sql_name, con.conname, CASE con.contype WHEN 'p' THEN 'PRIMARY KEY' ELSE 'UNIQUE' END, t.tenant_sql, cols.list)
         ELSE
           format(E'DROP INDEX %1$I.%2$I;\nCREATE UNIQUE INDEX %2$I ON %3$s (%4$s, %5$s)%6$s;',
                  t.schema, x.relname, t.sql_name, t.tenant_sql, cols.list,
                  coalesce(' WHERE ' || pg_get_expr(i.indpred, i.indrelid), ''))
       END AS remediation,
       x.relname::text AS key
  FROM tenant_tables t
  JOIN pg_index i ON i.indrelid = t.oid AND i.indisunique
  JOIN pg_class x ON x.oid = i.indexrelid
  LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = t.oid AND con.contype IN ('p', 'u')
  CROSS JOIN LATERAL (
    -- Key columns only: INCLUDE columns (past indnkeyatts) do not take part in uniqueness.
    SELECT string_agg(coalesce(quote_ident(a.attname), '(expression)'), ', ' ORDER BY k.ord) AS list,
           bool_or(k.attnum = 0) AS has_expression,
           bool_or(k.attnum = t.tenant_attnum) AS has_tenant
      FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
      LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
     WHERE k.ord <= i.indnkeyatts
  ) AS cols
 WHERE NOT cols.has_tenant
