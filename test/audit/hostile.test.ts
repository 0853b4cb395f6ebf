/**
 * Names are attacker-influenced in a shared database. A remediation is SQL people paste and run,
 * and a report is text people read in a terminal: neither may carry what a name smuggles in.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { audit } from '../../src/cli/commands/audit.ts';
import { ident } from '../../src/sql/quote.ts';
import { auditOf, fencedBase, protectTables, tenantTable, withDatabase } from './support.ts';

const EVIL = 'x\nDROP TABLE public.items; --';

test('a newline in a name cannot turn a remediation comment into a statement', () =>
  withDatabase(async (db) => {
    await fencedBase(db);
    const evil = ident(EVIL);
    // rls-disabled: the table itself, unprotected
    await db.admin.query(`CREATE TABLE ${evil} (tenant_id uuid NOT NULL, id uuid NOT NULL, PRIMARY KEY (tenant_id, id));
      CREATE INDEX ON ${evil} (tenant_id)`);
    // fk-without-tenant: the referenced table's name is in the comment line
    await tenantTable(db, `p${EVIL}`, 'UNIQUE (id)');
    await tenantTable(db, 'children', `parent_id uuid REFERENCES ${ident(`p${EVIL}`)} (id)`);
    // global-unique-on-tenant-table: an expression index, whose fix is all comment
    await tenantTable(db, 'accounts', 'email text');
    await db.admin.query(`CREATE UNIQUE INDEX ${ident(`i${EVIL}`)} ON accounts (lower(email))`);
    await protectTables(db, `public.${ident(`p${EVIL}`)}`, 'children', 'accounts');
    // security-definer-exposed: an argument name, in the SECURITY INVOKER hint
    await db.admin.query(`CREATE FUNCTION public.peek(${ident(`a${EVIL}`)} int) RETURNS int LANGUAGE sql SECURITY DEFINER
      SET search_path = pg_catalog, pg_temp AS $$ SELECT 1 $$`);

    const report = await auditOf(db);
    const rules = ['rls-disabled', 'fk-without-tenant', 'global-unique-on-tenant-table', 'security-definer-exposed'];
    const fixes = report.findings.filter((f) => rules.includes(f.rule) && f.remediation);
    assert.deepEqual([...new Set(fixes.map((f) => f.rule))].sort(), [...rules].sort(), 'each rule reports its hostile object');
    for (const f of fixes) {
      for (const line of f.remediation!.split('\n').filter((l) => l.startsWith('--'))) {
        assert.doesNotMatch(line, /DROP TABLE public\.items; --["]?\s*$/m, `${f.rule}: the name stays inside its comment line`);
      }
      await db.admin.query(f.remediation!);
    }
    const { rows } = await db.admin.query(`SELECT to_regclass('public.items') IS NOT NULL AS items`);
    assert.equal(rows[0].items, true, 'running every remediation left public.items in place');
    const after = await auditOf(db);
    assert.deepEqual(after.findings.filter((f) => f.rule === 'rls-disabled').map((f) => f.object), []);
  }),
);

test("rls-disabled's protect hint quotes a name the way protect parses it", () =>
  withDatabase(async (db) => {
    await fencedBase(db);
    await tenantTable(db, 'Orders');
    await tenantTable(db, "it's");
    const report = await auditOf(db);
    const hints = report.findings.filter((f) => f.rule === 'rls-disabled')
      .map((f) => /tenantfence protect (.+)$/m.exec(f.remediation!)![1]!);
    assert.deepEqual(hints.sort(), [`'public."Orders"'`, `'public."it'\\''s"'`]);
    // What a POSIX shell passes on: the single-quoted text, with '\'' as a quote.
    const argv = hints.map((h) => h.slice(1, -1).replaceAll(`'\\''`, `'`));
    await protectTables(db, ...argv);
    const after = await auditOf(db);
    assert.deepEqual(after.findings.map((f) => `${f.rule} ${f.object}`), []);
  }),
);

test('reports show control characters from the database as \\xNN, never raw', () =>
  withDatabase(async (db) => {
    await fencedBase(db);
    const name = 'e\x1b[2J\x1b[31mFAKE ok\r\u009b';
    await db.admin.query(`CREATE TABLE ${ident(name)} (tenant_id uuid NOT NULL, id uuid NOT NULL, PRIMARY KEY (tenant_id, id))`);
    const options = { db: db.admin, appRole: db.roles.app, agentRole: db.roles.agent, databaseName: db.name };
    for (const format of ['text', 'html'] as const) {
      const { stdout } = await audit({ ...options, format });
      assert.doesNotMatch(stdout, /[\x00-\x09\x0b-\x1f\x7f-\x9f]/, `${format}: no raw control character`);
      assert.ok(stdout.includes('e\\x1b[2J\\x1b[31mFAKE ok\\x0d\\x9b'), `${format}: the name is shown escaped`);
    }
  }),
);
