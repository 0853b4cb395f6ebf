-- Row level security cannot be enabled on a foreign table, and a user mapping lends its options
-- (a remote user and password) to whoever it maps: a loopback server mapped to a privileged user
-- reads tenant tables unfiltered through postgres_fdw or dblink. Reported for the fenced roles:
--   a foreign table they may read or write (anywhere outside pg_catalog),
--   a user mapping for them or for PUBLIC,
--   USAGE on a foreign-data wrapper (create servers) or a foreign server (create mappings and
--   foreign tables, connect with dblink_connect(server)).
WITH found AS (
  SELECT format('%s.%s', n.nspname, c.relname) AS object,
         format('Foreign table %s.%s is %s by %s; row level security cannot apply to a foreign table, so it answers for every tenant.',
                n.nspname, c.relname,
                CASE WHEN EXISTS (SELECT 1 FROM fenced f WHERE has_table_privilege(f.oid, c.oid, 'SELECT')) THEN 'readable' ELSE 'writable' END,
                (SELECT string_agg(f.rolname, ' and ' ORDER BY f.which) FROM fenced f
                  WHERE has_table_privilege(f.oid, c.oid, 'SELECT, INSERT, UPDATE, DELETE'))) AS detail,
         format('REVOKE ALL ON %I.%I FROM %s;', n.nspname, c.relname,
                array_to_string(ARRAY['PUBLIC'] || ARRAY(SELECT quote_ident(f.rolname) FROM fenced f ORDER BY f.which), ', ')) AS remediation,
         'table' AS key
    FROM pg_class c
    JOIN user_schemas n ON n.oid = c.relnamespace
   WHERE c.relkind = 'f'
     AND EXISTS (SELECT 1 FROM fenced f WHERE NOT f.rolsuper AND has_table_privilege(f.oid, c.oid, 'SELECT, INSERT, UPDATE, DELETE'))
  UNION ALL
  SELECT coalesce(f.rolname::text, 'PUBLIC'),
         format('A user mapping on server %s applies to %s: its options (a remote user, a password) serve every query the role sends through the server.',
                s.srvname, coalesce(format('the %s role %s', f.which, f.rolname), 'PUBLIC, the app and agent roles included')),
         format('DROP USER MAPPING FOR %s SERVER %I;', coalesce(quote_ident(f.rolname), 'PUBLIC'), s.srvname),
         'mapping:' || s.srvname
    FROM pg_user_mapping um
    JOIN pg_foreign_server s ON s.oid = um.umserver
    LEFT JOIN fenced f ON f.oid = um.umuser
   WHERE (um.umuser = 0 AND EXISTS (SELECT 1 FROM fenced x WHERE NOT x.rolsuper)) OR (f.oid IS NOT NULL AND NOT f.rolsuper)
  UNION ALL
  SELECT f.rolname, format('The %s role %s holds USAGE on %s %s: %s', f.which, f.rolname, o.what, o.name, o.why),
         format('REVOKE USAGE ON %s %I FROM PUBLIC, %I;', o.sql_kind, o.name, f.rolname), o.key
    FROM fenced f
   CROSS JOIN LATERAL (
     SELECT 'foreign-data wrapper' AS what, 'FOREIGN DATA WRAPPER' AS sql_kind, w.fdwname::text AS name,
            'it can define servers that reach other databases, around row level security.' AS why, 'wrapper:' || w.fdwname AS key
       FROM pg_foreign_data_wrapper w WHERE has_foreign_data_wrapper_privilege(f.oid, w.oid, 'USAGE')
     UNION ALL
     SELECT 'foreign server', 'FOREIGN SERVER', s.srvname::text,
            'it can map itself to it, define foreign tables on it and connect through it.', 'server:' || s.srvname
       FROM pg_foreign_server s WHERE has_server_privilege(f.oid, s.oid, 'USAGE')
   ) AS o
   WHERE NOT f.rolsuper
)
SELECT object, detail, remediation, key FROM found
