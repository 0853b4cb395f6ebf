-- An IMMUTABLE function promises the same result for the same arguments forever, so the planner
-- evaluates a call with constant arguments once, at plan time, and puts the value in the plan. A
-- policy helper declared IMMUTABLE around the tenant context (`ctx() ... IMMUTABLE AS 'SELECT
-- tenantfence.current_tenant()'`) is folded into cached plans: a prepared statement or a PL/pgSQL
-- query planned for one tenant keeps that tenant's value for the next one on the connection.
-- Reported for IMMUTABLE user functions a policy reaches (see policy_reach) whose body reads
-- something that changes between transactions: the tenant context, a setting, the current role, a
-- table or view, or a function that is not itself immutable.
WITH helpers AS (
  SELECT DISTINCT pr.oid, pr.table_oid, pr.policy
    FROM policy_reach pr
    JOIN pg_proc p ON p.oid = pr.oid AND pr.kind = 'f' AND p.provolatile = 'i'
    JOIN code c ON c.kind = 'f' AND c.oid = p.oid
),
reads_context AS (
  SELECT h.oid
    FROM (SELECT DISTINCT oid FROM helpers) AS h
    JOIN code c ON c.kind = 'f' AND c.oid = h.oid
   WHERE c.src ~* '\m(current_tenant|current_setting|pg_settings|pg_show_all_settings|current_user|current_role|session_user)\M|[''$]\s*show\s'
      OR EXISTS (SELECT 1 FROM setting_readers sr WHERE sr.kind = 'f' AND sr.oid = h.oid)
      OR cardinality(c.rels) > 0
      OR EXISTS (SELECT 1 FROM unnest(c.funcs) AS f(oid) JOIN pg_proc q ON q.oid = f.oid WHERE q.provolatile <> 'i')
      OR EXISTS (SELECT 1 FROM policy_reach r
                   JOIN pg_proc q ON q.oid = r.oid AND r.kind = 'f' AND q.provolatile <> 'i' AND q.oid <> h.oid
                   JOIN code qc ON qc.kind = 'f' AND qc.oid = q.oid
                  WHERE c.src ~* ('(^|[^\w$])"?' || regexp_replace(q.proname, '([.^$*+?()\[\]{}|\\])', '\\\1', 'g') || '"?\s*\('))
      OR EXISTS (SELECT 1 FROM pg_class rel JOIN user_schemas n ON n.oid = rel.relnamespace
                  WHERE rel.relkind IN ('r', 'p', 'v', 'm', 'f')
                    AND c.src ~* ('\m(from|join)\s+("?\w+"?\.)?"?' || regexp_replace(rel.relname, '([.^$*+?()\[\]{}|\\])', '\\\1', 'g') || '"?($|[^\w$(])'))
)
SELECT format('%s.%s(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)) AS object,
       format('Function %s.%s(%s) is IMMUTABLE but reads the tenant context or other per-transaction state, and policies use it (%s): the planner folds it into cached plans, which then serve one tenant''s value to the next.',
              n.nspname, p.proname, pg_get_function_identity_arguments(p.oid),
              (SELECT string_agg(DISTINCT format('%s on %s', h.policy, t.object), ', ')
                 FROM helpers h JOIN tenant_tables t ON t.oid = h.table_oid WHERE h.oid = p.oid)) AS detail,
       format('ALTER FUNCTION %I.%I(%s) STABLE;', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)) AS remediation,
       '' AS key
  FROM reads_context rc
  JOIN pg_proc p ON p.oid = rc.oid
  JOIN pg_namespace n ON n.oid = p.pronamespace
