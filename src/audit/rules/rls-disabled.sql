-- A table with the tenant column and row level security off: every role that can read it reads
-- every tenant's rows. The remediation's last line is a comment naming the protect command: the
-- name is quoted the way protect parses it (quote_ident: unquoted names fold to lower case), put
-- in single quotes for the shell when it needs quoting, and left out when it holds control
-- characters (a newline in the name would end the comment and run the rest as SQL).
SELECT t.object,
       format('Row level security is off on %s, so every role with SELECT reads every tenant''s rows.', t.object) AS detail,
       format(E'ALTER TABLE %1$s ENABLE ROW LEVEL SECURITY;\nALTER TABLE %1$s FORCE ROW LEVEL SECURITY;\n%2$s', t.sql_name,
              CASE WHEN t.sql_name ~ '[[:cntrl:]]'
                     THEN '-- then add the tenant policy with tenantfence protect (rename the table first: its name holds control characters)'
                   WHEN t.sql_name ~ '^[a-z0-9_.]+$'
                     THEN '-- then add the tenant policy: tenantfence protect ' || t.sql_name
                   ELSE '-- then add the tenant policy: tenantfence protect ''' || replace(t.sql_name, '''', '''\''''') || ''''
              END) AS remediation,
       '' AS key
  FROM tenant_tables t
 WHERE NOT t.rls_enabled
