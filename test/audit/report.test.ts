/**
 * The report as people read it (issue 9, item 6): ordered by level then by what a finding exposes
 * (RLS off first), grouped by object, one fix block per distinct fix, and no remediation that puts
 * a bypass back.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { audit } from '../../src/cli/commands/audit.ts';
import { ident } from '../../src/sql/quote.ts';
import type { TestDatabase } from '../support/db.ts';
import { auditOf, fencedBase, tenantTable, withDatabase } from './support.ts';

async function mixed(db: TestDatabase): Promise<void> {
  await fencedBase(db);
  // rule names sort "policy-*" before "rls-disabled": the old order put these first
  await tenantTable(db, 'legacy', 'body text');
  await db.admin.query(`ALTER TABLE legacy ENABLE ROW LEVEL SECURITY; ALTER TABLE legacy FORCE ROW LEVEL SECURITY;
    CREATE POLICY legacy_guc ON legacy USING (tenant_id = current_setting('app.tenant_id')::uuid OR current_setting('app.bypass_rls', true) = 'on')`);
  await tenantTable(db, 'zz_open');
  await db.admin.query(`CREATE INDEX ON items (id)`);
}

test('text report: worst object first (RLS off before policy errors), grouped, each distinct fix once', () =>
  withDatabase(async (db) => {
    await mixed(db);
    const result = await audit({ db: db.admin, appRole: db.roles.app, agentRole: db.roles.agent });
    const groups = result.stdout.split('\n').filter((l) => /^\S+ \(\d/.test(l)).map((l) => l.split(' ')[0]);
    assert.deepEqual(groups, ['public.zz_open', 'public.legacy'], result.stdout);
    assert.equal(result.findings[0]!.rule, 'rls-disabled');
    // several rules judge the legacy policy and all suggest the same replacement: printed once
    const legacy = result.findings.filter((f) => f.object === 'public.legacy');
    const fixes = new Set(legacy.map((f) => f.remediation));
    assert.ok(legacy.length > fixes.size, `several findings share a fix: ${legacy.map((f) => f.rule).join(', ')}`);
    const block = result.stdout.slice(result.stdout.indexOf('public.legacy ('));
    for (const fix of fixes) {
      const first = fix!.split('\n')[0]!;
      assert.equal(block.split(first).length - 1, 1, `printed once: ${first}`);
    }
    assert.match(block, /fix \(policy-[a-z-]+(, policy-[a-z-]+)+\):/);
  }),
);

test('JSON: a summary, findings in report order, each fix once with the findings it removes', () =>
  withDatabase(async (db) => {
    await mixed(db);
    const result = await audit({ db: db.admin, appRole: db.roles.app, agentRole: db.roles.agent, format: 'json' });
    const report = JSON.parse(result.stdout);
    assert.deepEqual([report.summary.errors, report.summary.tenantTables], [result.findings.filter((f) => f.level === 'error').length, 3]);
    assert.equal(report.findings[0].rule, 'rls-disabled');
    assert.equal(report.fixes.length, new Set(result.findings.map((f) => f.remediation).filter(Boolean)).size);
    assert.deepEqual(report.fixes.flatMap((f: { findings: string[] }) => f.findings).sort(),
      result.findings.filter((f) => f.remediation).map((f) => f.fingerprint).sort());
  }),
);

test('no remediation puts a bypass back: a policy without WITH CHECK gets the verified predicate, never a copy of USING', () =>
  withDatabase(async (db) => {
    await fencedBase(db);
    await tenantTable(db, 'pinned', 'body text');
    await tenantTable(db, 'switched', 'body text');
    for (const t of ['pinned', 'switched']) await db.admin.query(`ALTER TABLE ${ident(t)} ENABLE ROW LEVEL SECURITY; ALTER TABLE ${ident(t)} FORCE ROW LEVEL SECURITY`);
    await db.admin.query(`CREATE POLICY p ON pinned USING (tenant_id = (SELECT tenantfence.current_tenant()::uuid));
      CREATE POLICY p ON switched USING (tenant_id = (SELECT tenantfence.current_tenant()::uuid) OR current_setting('app.bypass_rls', true) = 'on')`);
    const before = await auditOf(db);
    const withCheck = before.findings.filter((f) => f.rule === 'policy-missing-with-check');
    assert.deepEqual(withCheck.map((f) => f.object), ['public.pinned'], 'the bypassed USING is left to policy-bypass-guc');
    assert.equal(withCheck[0]!.remediation, 'ALTER POLICY p ON public.pinned WITH CHECK ("tenant_id" = (SELECT "tenantfence".current_tenant()::uuid));');
    for (const f of before.findings) assert.doesNotMatch(f.remediation ?? '', /WITH CHECK \([^;]*current_setting/, `${f.rule} on ${f.object}`);
    for (const fix of new Set(before.findings.map((f) => f.remediation).filter((r): r is string => Boolean(r)))) await db.admin.query(fix);
    assert.deepEqual((await auditOf(db)).findings.map((f) => `${f.rule} ${f.object}`), []);
    const { rows } = await db.admin.query(`SELECT count(*)::int AS n FROM pg_policy WHERE pg_get_expr(polwithcheck, polrelid) LIKE '%current_setting%'
      OR pg_get_expr(polqual, polrelid) LIKE '%current_setting%'`);
    assert.equal(rows[0].n, 0);
  }),
);
