-- A table with the tenant column and row level security off: every role that can read it reads
-- every tenant's rows. The remediation turns it on with tenantfence's policy; its last line is a
-- comment naming the protect command (grants, index): the
-- name is quoted the way protect parses it (quote_ident: unquoted names fold to lower case), put
-- in single quotes for the shell when it needs quoting, and left out when it holds control
-- characters (a newline in the name would end the comment and run the rest as SQL).
SELECT t.object,
       format('Row level security is off on %s, so every role with SELECT reads every tenant''s rows.', t.object) AS detail,
       format(E'ALTER TABLE %1$s ENABLE ROW LEVEL SECURITY;\nALTER TABLE %1$s FORCE ROW LEVEL SECURITY;\n%2$s\n%3$s', t.sql_name, t.fence_policy,
              CASE WHEN t.sql_name ~ '[[:cntrl:]]'
                     THEN '-- grants and the tenant index: tenantfence protect (rename the table first: its name holds control characters)'
                   WHEN t.sql_name ~ '^[a-z0-9_.]+$'
                     THEN '-- grants and the tenant index: tenantfence protect ' || t.sql_name
                   ELSE '-- grants and the tenant index: tenantfence protect ''' || replace(t.sql_name, '''', '''\''''') || ''''
              END) AS remediation,
       '' AS key
  FROM tenant_tables t
 WHERE NOT t.rls_enabled
