-- A trigger's function runs on every write to the table; SECURITY DEFINER makes it run as the
-- function's owner, outside the writer's tenant policy, so a tenant's insert can read or change
-- other tenants' rows through it.
SELECT t.object,
       format('Trigger %s on %s runs SECURITY DEFINER function %s.%s() as %s, outside the writing tenant''s policy.',
              tg.tgname, t.object, n.nspname, p.proname, pg_get_userbyid(p.proowner)) AS detail,
       format(E'ALTER FUNCTION %I.%I() SECURITY INVOKER;', n.nspname, p.proname) AS remediation,
       tg.tgname::text AS key
  FROM tenant_tables t
  JOIN pg_trigger tg ON tg.tgrelid = t.oid AND NOT tg.tgisinternal
  JOIN pg_proc p ON p.oid = tg.tgfoid AND p.prosecdef
  JOIN pg_namespace n ON n.oid = p.pronamespace
