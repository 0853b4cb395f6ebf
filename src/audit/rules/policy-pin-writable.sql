-- A policy is only as fixed as what it reads. Three ways the app or agent role rewrites its own
-- tenant, through what a policy reaches (its text, and the functions and views it calls, followed;
-- see policy_reach in prelude.sql):
--   a table the policy reads that the role may INSERT into or UPDATE, with row level security off
--   (`tenant_id = (SELECT org_id FROM app_users WHERE username = current_user)` and UPDATE on
--   app_users: the role sets its own org_id);
--   a function the policy calls that the role owns (or can SET ROLE to the owner of): CREATE OR
--   REPLACE makes it return any tenant;
--   CURRENT_USER (CURRENT_ROLE, USER) read by the policy or a function it calls, when the role can
--   SET ROLE to another role: current_user then names that role, and its tenant.
-- Only policies that apply to a fenced role are followed; tenantfence's verifier is not.
WITH reach AS (
  SELECT DISTINCT pol.table_oid, pol.object, pol.sql_name, pol.policy, pr.kind, pr.oid
    FROM policies pol
    JOIN policy_reach pr ON pr.table_oid = pol.table_oid AND pr.policy = pol.policy
),
writable AS (
  SELECT r.object, r.policy, format('%s.%s', n.nspname, c.relname) AS target,
         (SELECT string_agg(format('%s (%s)', f.rolname,
                                   array_to_string(ARRAY(SELECT pr FROM unnest(ARRAY['INSERT', 'UPDATE']) AS pr
                                                          WHERE has_table_privilege(f.oid, c.oid, pr)), ', ')), ' and ' ORDER BY f.which)
            FROM fenced f WHERE NOT f.rolsuper AND has_table_privilege(f.oid, c.oid, 'INSERT, UPDATE')) AS holders,
         format('REVOKE INSERT, UPDATE ON %I.%I FROM %s;', n.nspname, c.relname,
                array_to_string(ARRAY['PUBLIC'] || ARRAY(SELECT quote_ident(f.rolname) FROM fenced f ORDER BY f.which), ', ')) AS fix
    FROM reach r
    JOIN pg_class c ON c.oid = r.oid AND r.kind = 'r' AND c.relkind IN ('r', 'p')
    JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE NOT c.relrowsecurity
     AND EXISTS (SELECT 1 FROM fenced f WHERE NOT f.rolsuper AND has_table_privilege(f.oid, c.oid, 'INSERT, UPDATE'))
),
owned AS (
  SELECT r.object, r.policy, format('%s.%s(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)) AS target,
         (SELECT string_agg(f.rolname, ' and ' ORDER BY f.which) FROM fenced f
           WHERE NOT f.rolsuper AND pg_has_role(f.oid, p.proowner, 'MEMBER')) AS holders,
         format('ALTER FUNCTION %I.%I(%s) OWNER TO CURRENT_USER;', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)) AS fix
    FROM reach r
    JOIN pg_proc p ON p.oid = r.oid AND r.kind = 'f'
    JOIN user_schemas n ON n.oid = p.pronamespace
   WHERE EXISTS (SELECT 1 FROM fenced f WHERE NOT f.rolsuper AND pg_has_role(f.oid, p.proowner, 'MEMBER'))
),
-- Policies (their text, with literals blanked) and reached functions (their source) that read the
-- current role's name.
reads_role AS (
  SELECT pol.object, pol.policy
    FROM policies pol
   WHERE pol.applies
     AND regexp_replace(coalesce(pol.using_expr, '') || ' ' || coalesce(pol.check_expr, ''), '''(?:[^'']|'''')*''', '''''', 'g')
         ~ '\m(CURRENT_USER|CURRENT_ROLE|USER)\M'
  UNION
  SELECT r.object, r.policy
    FROM reach r
    JOIN code c ON c.kind = 'f' AND c.oid = r.oid AND r.kind = 'f'
   WHERE c.src ~* '\m(current_user|current_role)\M'
),
-- Roles a fenced role can SET ROLE to (other than itself and the predefined pg_* roles), with the
-- REVOKE that cuts each path.
switchable AS (
  SELECT f.oid, f.rolname, f.which,
         string_agg(DISTINCT t.rolname, ', ' ORDER BY t.rolname) AS targets,
         string_agg(DISTINCT p.revoke, E'\n' ORDER BY p.revoke) AS fix
    FROM fenced f
    JOIN fenced_paths p ON p.member = f.oid
    JOIN pg_roles t ON t.oid = p.target
   WHERE NOT f.rolsuper AND t.oid <> f.oid AND t.rolname !~ '^pg_'
   GROUP BY f.oid, f.rolname, f.which
)
SELECT object,
       format('Policy %s on %s reads %s, which %s may write (row level security is off on it): the role can change the tenant the policy gives it.',
              policy, object, target, holders) AS detail,
       fix AS remediation, policy || ':table:' || target AS key
  FROM writable
UNION ALL
SELECT object,
       format('Policy %s on %s calls %s, owned by a role that %s can act as: CREATE OR REPLACE can make it return any tenant.',
              policy, object, target, holders),
       fix, policy || ':function:' || target
  FROM owned
UNION ALL
SELECT rr.object,
       format('Policy %s on %s reads CURRENT_USER, and the %s role %s can SET ROLE to %s: the policy then sees another role''s name, and its tenant.',
              rr.policy, rr.object, s.which, s.rolname, s.targets),
       s.fix, rr.policy || ':role:' || s.rolname
  FROM reads_role rr
 CROSS JOIN switchable s
