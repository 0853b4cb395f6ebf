/** Cases for the policy rules, most of them taken from recipes seen in the wild. */
import { protectTables, replacePolicy, tenantTable, type RuleCase } from '../support.ts';
import type { TestDatabase } from '../../support/db.ts';

const VERIFIED = '(SELECT tenantfence.current_tenant()::uuid)';

async function orders(db: TestDatabase, ...policies: string[]): Promise<void> {
  await tenantTable(db, 'orders');
  await protectTables(db, 'orders');
  if (policies.length > 0) await replacePolicy(db, 'orders', ...policies);
}

const onOrders = () => ['public.orders'];

/** tenantfence's policy stays; an extra permissive SELECT policy is added beside it. */
function extraSelect(using: string): RuleCase {
  return {
    rule: 'policy-read-not-tenant',
    name: `an extra SELECT policy USING (${using})`,
    setup: async (db) => {
      await orders(db);
      await db.admin.query(`CREATE POLICY peek ON orders FOR SELECT USING (${using})`);
    },
    objects: onOrders,
    also: ['multiple-permissive-policies'],
  };
}

/** The tenant pinned to a helper (created by `helper`) instead of the verifier, both sides. */
function helperPin(name: string, helper: string, call: string): RuleCase {
  return {
    rule: 'policy-tamperable-context',
    name,
    setup: async (db) => {
      await db.admin.query(helper);
      await orders(db, `CREATE POLICY t ON orders USING (tenant_id = (SELECT ${call})) WITH CHECK (tenant_id = (SELECT ${call}))`);
    },
    objects: onOrders,
  };
}

/** tenantfence's policy replaced by a SELECT policy under test and a verified INSERT policy. */
function selectOnly(rule: string, name: string, using: string, also: string[] = [], before = ''): RuleCase {
  return {
    rule,
    name,
    setup: async (db) => {
      if (before) await db.admin.query(before);
      await orders(db, `CREATE POLICY p ON orders FOR SELECT USING (${using})`,
        `CREATE POLICY w ON orders FOR INSERT WITH CHECK (tenant_id = ${VERIFIED})`);
    },
    objects: onOrders,
    also,
  };
}

export const policyCases: RuleCase[] = [
  {
    rule: 'policy-write-check-not-tenant',
    name: 'an extra INSERT policy that checks only NOT NULL',
    setup: async (db) => {
      await orders(db);
      await db.admin.query('CREATE POLICY ins ON orders FOR INSERT WITH CHECK (tenant_id IS NOT NULL)');
    },
    objects: onOrders,
    also: ['multiple-permissive-policies'],
  },
  {
    rule: 'policy-write-check-not-tenant',
    name: 'shared rows OR-ed into the write check',
    setup: (db) =>
      orders(db, `CREATE POLICY shared ON orders USING (tenant_id = ${VERIFIED} OR tenant_id IS NULL)
                  WITH CHECK (tenant_id = ${VERIFIED} OR tenant_id IS NULL)`),
    objects: onOrders,
  },
  {
    rule: 'policy-write-check-not-tenant',
    name: 'FOR UPDATE without WITH CHECK falls back to a USING that does not pin',
    setup: async (db) => {
      await orders(db, `CREATE POLICY own ON orders FOR SELECT USING (tenant_id = ${VERIFIED})`,
        `CREATE POLICY ins ON orders FOR INSERT WITH CHECK (tenant_id = ${VERIFIED})`,
        `CREATE POLICY upd ON orders FOR UPDATE USING (tenant_id IS NOT NULL)`);
    },
    objects: onOrders,
    also: ['policy-missing-with-check', 'policy-read-not-tenant'], // its USING also lets UPDATE touch any row
  },
  extraSelect('tenant_id IS NOT NULL'),
  extraSelect('tenant_id = tenant_id'),
  extraSelect('current_user IS NOT NULL'),
  extraSelect('true OR tenant_id IS NULL'),
  extraSelect(`tenant_id <> ${VERIFIED}`),
  extraSelect(`tenant_id = ${VERIFIED} OR current_user = 'admin'`),
  {
    rule: 'policy-read-not-tenant',
    name: 'FOR DELETE with a USING that does not pin',
    setup: (db) => orders(db, `CREATE POLICY own ON orders USING (tenant_id = ${VERIFIED}) WITH CHECK (tenant_id = ${VERIFIED})`,
      'CREATE POLICY purge ON orders FOR DELETE USING (tenant_id IS NOT NULL)'),
    objects: onOrders,
    also: ['multiple-permissive-policies'],
  },
  {
    rule: 'policy-always-true',
    name: 'USING (true) for SELECT',
    setup: async (db) => {
      await orders(db);
      await db.admin.query('CREATE POLICY open ON orders FOR SELECT USING (true)');
    },
    objects: onOrders,
    also: ['multiple-permissive-policies'],
  },
  {
    rule: 'policy-tamperable-context',
    name: "the seed recipe: tenant_id = current_setting('app.tenant_id')::uuid",
    setup: (db) => orders(db, `CREATE POLICY tenant_isolation ON orders USING (tenant_id = current_setting('app.tenant_id')::uuid)`),
    objects: onOrders,
    also: ['policy-per-row-function', 'policy-empty-string-cast', 'policy-missing-with-check'],
  },
  {
    rule: 'policy-tamperable-context',
    name: 'a wrapped helper function that reads a setting',
    setup: async (db) => {
      await db.admin.query(`CREATE FUNCTION public.app_tenant() RETURNS uuid LANGUAGE sql STABLE
        AS $$ SELECT nullif(current_setting('app.tenant_id', true), '')::uuid $$`);
      await orders(db, `CREATE POLICY t ON orders USING (tenant_id = (SELECT public.app_tenant()))
                        WITH CHECK (tenant_id = (SELECT public.app_tenant()))`);
    },
    objects: onOrders,
  },
  helperPin('a helper with an SQL-standard body (RETURN ...), whose prosrc is empty',
    `CREATE FUNCTION public.cur_t() RETURNS uuid LANGUAGE sql STABLE RETURN nullif(current_setting('app.tenant', true), '')::uuid`,
    'public.cur_t()'),
  helperPin('a helper that calls a helper that reads the setting',
    `CREATE FUNCTION public.raw_t() RETURNS text LANGUAGE sql STABLE AS $$ SELECT current_setting('app.tenant', true) $$;
     CREATE FUNCTION public.cur_t() RETURNS uuid LANGUAGE sql STABLE RETURN nullif(public.raw_t(), '')::uuid`,
    'public.cur_t()'),
  helperPin("a PL/pgSQL helper that runs EXECUTE 'SHOW ...'",
    `CREATE FUNCTION public.cur_t() RETURNS uuid LANGUAGE plpgsql STABLE AS $$
       DECLARE v text; BEGIN EXECUTE 'SHOW app.tenant' INTO v; RETURN nullif(v, '')::uuid; END $$`,
    'public.cur_t()'),
  helperPin('a helper with a quoted mixed-case name',
    `CREATE FUNCTION public."curTenant"() RETURNS uuid LANGUAGE sql STABLE AS $$ SELECT nullif(current_setting('app.tenant', true), '')::uuid $$`,
    'public."curTenant"()'),
  helperPin('a helper whose name holds regular-expression characters',
    `CREATE FUNCTION public."t(e)n[a]nt*+?"() RETURNS uuid LANGUAGE sql STABLE AS $$ SELECT nullif(current_setting('app.tenant', true), '')::uuid $$`,
    'public."t(e)n[a]nt*+?"()'),
  helperPin('a view over pg_settings',
    `CREATE VIEW public.ctx AS SELECT setting FROM pg_catalog.pg_settings WHERE name = 'app.tenant';
     CREATE FUNCTION public.cur_t() RETURNS uuid LANGUAGE sql STABLE RETURN (SELECT nullif(setting, '')::uuid FROM public.ctx)`,
    'public.cur_t()'),
  selectOnly('policy-tamperable-context', 'the tenant read from pg_settings in the policy',
    "tenant_id = (SELECT nullif(setting, '')::uuid FROM pg_settings WHERE name = 'app.tenant')"),
  selectOnly('policy-tamperable-context', 'a membership lookup keyed by a setting',
    "tenant_id IN (SELECT m.org FROM public.memberships m WHERE m.user_id = nullif(current_setting('app.user', true), '')::uuid)",
    [], 'CREATE TABLE public.memberships (user_id uuid, org uuid)'),
  selectOnly('policy-tamperable-context', 'a bypass switch inside CASE',
    `CASE WHEN current_setting('app.bypass', true) = 'on' THEN true ELSE tenant_id = ${VERIFIED} END`,
    ['policy-per-row-function']),
  selectOnly('policy-tamperable-context', 'a verified pin AND-ed with a setting pin',
    `tenant_id = ${VERIFIED} AND tenant_id = (SELECT nullif(current_setting('app.tenant', true), '')::uuid)`),
  selectOnly('policy-tamperable-context', 'a setting pin AND-ed with another per-statement pin',
    "tenant_id = (SELECT nullif(current_setting('app.tenant', true), '')::uuid) AND tenant_id = (SELECT o.tenant_id FROM public.orders o LIMIT 0)"),
  {
    rule: 'policy-bypass-guc',
    name: 'OR a helper (SQL-standard body) that reads a setting',
    setup: async (db) => {
      await db.admin.query(`CREATE FUNCTION public."isAdmin"() RETURNS boolean LANGUAGE sql STABLE RETURN current_setting('app.admin', true) = 'on'`);
      await orders(db, `CREATE POLICY t ON orders USING (tenant_id = ${VERIFIED} OR (SELECT public."isAdmin"()))
                        WITH CHECK (tenant_id = ${VERIFIED})`);
    },
    objects: onOrders,
  },
  {
    rule: 'policy-bypass-guc',
    name: "OR current_setting('app.bypass_rls', true) = 'on'",
    setup: (db) =>
      orders(db, `CREATE POLICY t ON orders USING (tenant_id = ${VERIFIED} OR current_setting('app.bypass_rls', true) = 'on')
                  WITH CHECK (tenant_id = ${VERIFIED})`),
    objects: onOrders,
    also: ['policy-per-row-function'],
  },
  {
    rule: 'policy-per-row-function',
    name: 'the verifier called without (SELECT ...)',
    setup: (db) =>
      orders(db, `CREATE POLICY t ON orders USING (tenant_id = tenantfence.current_tenant()::uuid)
                  WITH CHECK (tenant_id = tenantfence.current_tenant()::uuid)`),
    objects: onOrders,
  },
  {
    rule: 'policy-type-mismatch',
    name: 'tenant_id::text compared with the verified tenant',
    setup: (db) =>
      orders(db, `CREATE POLICY t ON orders USING (tenant_id::text = (SELECT tenantfence.current_tenant()))
                  WITH CHECK (tenant_id::text = (SELECT tenantfence.current_tenant()))`),
    objects: onOrders,
  },
  {
    rule: 'policy-empty-string-cast',
    name: 'current_setting()::uuid wrapped but without NULLIF',
    setup: (db) =>
      orders(db, `CREATE POLICY t ON orders USING (tenant_id = (SELECT current_setting('app.tenant_id')::uuid))
                  WITH CHECK (tenant_id = (SELECT current_setting('app.tenant_id')::uuid))`),
    objects: onOrders,
    also: ['policy-tamperable-context'],
  },
  {
    rule: 'multiple-permissive-policies',
    name: 'a second, equivalent SELECT policy',
    setup: async (db) => {
      await orders(db);
      await db.admin.query(`CREATE POLICY also_mine ON orders FOR SELECT USING (tenant_id = ${VERIFIED})`);
    },
    objects: onOrders,
  },
  {
    rule: 'policy-missing-with-check',
    name: 'FOR ALL with USING only',
    setup: (db) => orders(db, `CREATE POLICY t ON orders USING (tenant_id = ${VERIFIED})`),
    objects: onOrders,
  },
];
