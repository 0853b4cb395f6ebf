-- Permissive policies are OR'ed: with two of them for the same command, each row is tested against
-- both (slower), and the looser one decides what a tenant sees (easy to widen by accident).
WITH per_command AS (
  SELECT pol.table_oid, c.cmd, array_agg(pol.policy ORDER BY pol.policy) AS names
    FROM policies pol
   CROSS JOIN LATERAL (VALUES ('SELECT', 'r'), ('INSERT', 'a'), ('UPDATE', 'w'), ('DELETE', 'd')) AS c(cmd, code)
   WHERE pol.permissive AND pol.applies AND pol.cmd IN (c.code, '*')
   GROUP BY pol.table_oid, c.cmd
  HAVING count(*) > 1
),
per_table AS (
  SELECT p.table_oid, string_agg(p.cmd, ', ' ORDER BY p.cmd COLLATE "C") AS commands,
         (SELECT array_agg(DISTINCT n COLLATE "C" ORDER BY n COLLATE "C") FROM per_command q, unnest(q.names) AS n WHERE q.table_oid = p.table_oid) AS names
    FROM per_command p
   GROUP BY p.table_oid
)
SELECT t.object,
       format('%s has several permissive policies for %s (%s); they are OR''ed, so each row is tested against all of them and the loosest decides.',
              t.object, pt.commands, array_to_string(pt.names, ', ')) AS detail,
       -- Keep tenantfence's policy when it is one of them; otherwise replace them all with it.
       (SELECT string_agg(format('DROP POLICY IF EXISTS %I ON %s;', n, t.sql_name), E'\n' ORDER BY n COLLATE "C")
          FROM unnest(pt.names) AS n WHERE n <> (SELECT policy FROM fence))
       || CASE WHEN (SELECT policy FROM fence) = ANY (pt.names) THEN '' ELSE E'\n' || t.fence_policy END AS remediation,
       '' AS key
  FROM per_table pt
  JOIN tenant_tables t ON t.oid = pt.table_oid
