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
    also: ['policy-missing-with-check'],
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
