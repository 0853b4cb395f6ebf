-- A SECURITY DEFINER function runs as its owner, usually a role that row level security does not
-- bind; if the app or agent may call it, it is a door around the fence. tenantfence's own functions
-- (every one in schema tenantfence owned by tenantfence_owner: current_tenant(), audit_append()) are
-- meant to be called and are exempt; only tenantfence_owner can create functions in that schema.
-- Trigger functions cannot be called directly (see trigger-security-definer-on-tenant-table), and
-- extension members belong to their extension.
SELECT format('%s.%s(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)) AS object,
       format('Function %s.%s(%s) is SECURITY DEFINER (runs as %s) and %s may execute it, so SQL can reach what %s can, around the tenant policy.',
              n.nspname, p.proname, pg_get_function_identity_arguments(p.oid), pg_get_userbyid(p.proowner),
              coalesce((SELECT string_agg(f.rolname, ' and ' ORDER BY f.which) FROM fenced f WHERE has_function_privilege(f.oid, p.oid, 'EXECUTE')), 'PUBLIC'),
              pg_get_userbyid(p.proowner)) AS detail,
       format(E'REVOKE EXECUTE ON FUNCTION %I.%I(%s) FROM %s;\n-- or make it SECURITY INVOKER: %s',
              n.nspname, p.proname, pg_get_function_identity_arguments(p.oid),
              array_to_string(ARRAY['PUBLIC'] || ARRAY(SELECT quote_ident(f.rolname) FROM fenced f ORDER BY f.which), ', '),
              -- a comment line: argument names are identifiers and may hold a newline
              regexp_replace(format('ALTER FUNCTION %I.%I(%s) SECURITY INVOKER;', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)),
                             '[[:cntrl:]]', '?', 'g')) AS remediation,
       '' AS key
  FROM pg_proc p
  JOIN user_schemas n ON n.oid = p.pronamespace
  CROSS JOIN fence fc
 WHERE p.prosecdef
   AND p.prorettype NOT IN ('trigger'::regtype, 'event_trigger'::regtype)
   AND NOT (n.nspname = fc.schema AND pg_get_userbyid(p.proowner) = fc.owner)
   AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
   AND (EXISTS (SELECT 1 FROM fenced f WHERE has_function_privilege(f.oid, p.oid, 'EXECUTE'))
        OR p.proacl IS NULL  -- the default ACL: PUBLIC may execute
        OR EXISTS (SELECT 1 FROM aclexplode(p.proacl) a WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE'))
