-- A SECURITY DEFINER function resolves unqualified names through the caller's search_path unless
-- it sets its own; a caller who can create a table, function or operator in an earlier schema (or
-- in pg_temp, which is searched first unless listed) runs code with the owner's rights. The fix is
-- `SET search_path = <trusted schemas>, pg_temp` with pg_temp last.
-- tenantfence's own verifier (schema tenantfence, owned by tenantfence_owner) sets no search_path
-- on purpose: the switch cost ~1.5 µs per call, and every name in its body is schema-qualified
-- instead (test/core/verifier.test.ts runs it under a hostile search_path).
WITH defs AS (
  SELECT p.oid, n.nspname, p.proname,
         pg_get_function_identity_arguments(p.oid) AS args,
         (SELECT substr(c, length('search_path=') + 1) FROM unnest(p.proconfig) AS c WHERE c LIKE 'search\_path=%') AS path
    FROM pg_proc p
    JOIN user_schemas n ON n.oid = p.pronamespace
   WHERE p.prosecdef
     AND NOT (n.nspname = 'tenantfence' AND pg_get_userbyid(p.proowner) = 'tenantfence_owner')
     AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
),
checked AS (
  SELECT d.*, s.elements,
         -- schemas on the path where a fenced role (or PUBLIC, through them) can create objects
         ARRAY(SELECT e FROM unnest(s.elements) AS e JOIN pg_namespace ns ON ns.nspname = e
                WHERE EXISTS (SELECT 1 FROM fenced f WHERE NOT f.rolsuper AND has_schema_privilege(f.oid, ns.oid, 'CREATE'))
                ORDER BY e COLLATE "C") AS writable
    FROM defs d
   CROSS JOIN LATERAL (
     SELECT ARRAY(SELECT btrim(btrim(x), '"') FROM unnest(string_to_array(d.path, ',')) AS x WHERE btrim(x) <> '') AS elements
   ) AS s
)
SELECT format('%s.%s(%s)', c.nspname, c.proname, c.args) AS object,
       format('SECURITY DEFINER function %s.%s(%s) %s, so a caller can put objects of its own in front of the ones it means.',
              c.nspname, c.proname, c.args,
              CASE WHEN c.path IS NULL THEN 'does not set search_path'
                   WHEN cardinality(c.writable) > 0 THEN format('searches %s, where the app or agent can create objects', array_to_string(c.writable, ', '))
                   ELSE format('sets search_path to %s without pg_temp last (pg_temp is then searched first)', c.path) END) AS detail,
       format('ALTER FUNCTION %I.%I(%s) SET search_path = pg_catalog, pg_temp; -- then qualify the names its body uses',
              c.nspname, c.proname, c.args) AS remediation,
       '' AS key
  FROM checked c
 WHERE c.path IS NULL
    OR cardinality(c.writable) > 0
    -- an empty path ('' or "") leaves nothing unqualified to hijack but pg_temp relations
    OR (cardinality(c.elements) > 0 AND c.elements[cardinality(c.elements)] <> 'pg_temp')
