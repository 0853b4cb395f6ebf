-- tenantfence.keys holds the signing key: a role that reads it signs a context for any tenant, a
-- role that writes it adds a key of its own. Only tenantfence_owner may touch it, and row level
-- security cannot help: the table has none. Every path counts, because each is one SET ROLE away:
-- a grant (PUBLIC's too), a role the fenced role can become that holds one, and membership in
-- pg_read_all_data or pg_write_all_data, which do not bypass row level security but read and write
-- every table without it. The memberships are reported even before `tenantfence init` creates
-- the table.
WITH keys AS (
  SELECT c.oid, format('%I.%I', n.nspname, c.relname) AS sql_name
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace CROSS JOIN fence f
   WHERE n.nspname = f.schema AND c.relname = 'keys' AND c.relkind IN ('r', 'p')
),
exposed AS (
  SELECT f.oid, f.rolname, f.which, k.oid AS keys_oid, k.sql_name AS keys_sql,
         ARRAY(SELECT r.rolname::text FROM pg_roles r
                WHERE r.rolname IN ('pg_read_all_data', 'pg_write_all_data') AND pg_has_role(f.oid, r.oid, 'MEMBER')
                ORDER BY r.rolname COLLATE "C") AS builtins,
         -- the roles it is or can become that hold a privilege on the table (a superuser it can
         -- become holds every privilege; app-role-superuser reports that path)
         ARRAY(SELECT r.oid FROM pg_roles r
                WHERE k.oid IS NOT NULL AND NOT r.rolsuper AND pg_has_role(f.oid, r.oid, 'MEMBER')
                  AND has_table_privilege(r.oid, k.oid, 'SELECT, INSERT, UPDATE, DELETE')) AS holders,
         ARRAY(SELECT pr FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']) WITH ORDINALITY AS x(pr, ord)
                WHERE k.oid IS NOT NULL AND EXISTS (SELECT 1 FROM pg_roles r
                                                      WHERE NOT r.rolsuper AND pg_has_role(f.oid, r.oid, 'MEMBER')
                                                        AND has_table_privilege(r.oid, k.oid, pr))
                ORDER BY x.ord) AS privs
    FROM fenced f
    LEFT JOIN keys k ON true
   WHERE NOT f.rolsuper  -- app-role-superuser
)
SELECT e.rolname AS object,
       CASE WHEN cardinality(e.privs) > 0
            THEN format('The %s role %s can %s tenantfence.keys%s: it can read the signing key or add its own, and sign a context for any tenant.',
                        e.which, e.rolname, array_to_string(e.privs, ', '),
                        CASE WHEN cardinality(e.builtins) > 0
                             THEN format(' as a member of %s (which read or write every table without row level security)', array_to_string(e.builtins, ' and '))
                             ELSE '' END)
            ELSE format('The %s role %s is a member of %s, which read or write every table without row level security (they do not bypass it): tenantfence.keys, once tenantfence init creates it, and every other such table.',
                        e.which, e.rolname, array_to_string(e.builtins, ' and '))
       END AS detail,
       concat_ws(E'\n',
         (SELECT string_agg(DISTINCT p.revoke, E'\n' ORDER BY p.revoke)
            FROM fenced_paths p JOIN pg_roles r ON r.oid = p.target
           WHERE p.member = e.oid AND (r.oid = ANY (e.holders) OR r.rolname::text = ANY (e.builtins))),
         CASE WHEN cardinality(e.privs) > 0 THEN format('REVOKE ALL ON %s FROM PUBLIC, %I;', e.keys_sql, e.rolname) END) AS remediation,
       '' AS key
  FROM exposed e
 WHERE cardinality(e.privs) > 0 OR cardinality(e.builtins) > 0
