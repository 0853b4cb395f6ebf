/**
 * server-rls-cve: the version table and its comparison, run as the rule's own SQL with other
 * server versions in place of the live one (the rule reads it in one place), and the catalog check
 * for CVE-2024-4317 on a real database whose pg_stats_ext view predates the fix. The live server
 * itself is covered by the rule cases: a patched server reports nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadRules } from '../../src/audit/registry.ts';
import { ruleQuery } from '../../src/audit/runner.ts';
import { auditOf, fencedBase, serverVersion, withDatabase } from './support.ts';
import type { TestDatabase } from '../support/db.ts';

const rule = loadRules().find((r) => r.id === 'server-rls-cve')!;
const LIVE_VERSION = "current_setting('server_version_num')::int";

async function findingsAt(db: TestDatabase, version: number): Promise<Array<{ object: string; detail: string }>> {
  assert.equal(rule.sql.split(LIVE_VERSION).length, 2, 'the rule reads the server version in exactly one place');
  const sql = ruleQuery(rule.sql.replace(LIVE_VERSION, String(version)));
  const { rows } = await db.admin.query<{ object: string; detail: string }>(sql, [['public'], 'tenant_id', db.roles.app, db.roles.agent]);
  return rows.sort((a, b) => (a.object < b.object ? -1 : 1));
}

// server_version_num -> the CVEs the release notes say it is open to (rule doc: server-rls-cve.md)
const EXPECTED: Array<[number, string[]]> = [
  [90624, ['CVE-2023-2455', 'CVE-2024-10976', 'CVE-2025-8713']],
  [110022, ['CVE-2024-10976', 'CVE-2025-8713']],
  [130021, ['CVE-2025-8713']],
  [140011, ['CVE-2024-10976', 'CVE-2024-4317', 'CVE-2025-8713']],
  [150002, ['CVE-2023-2455', 'CVE-2024-10976', 'CVE-2024-4317', 'CVE-2025-8713']],
  [150003, ['CVE-2024-10976', 'CVE-2024-4317', 'CVE-2025-8713']],
  [150008, ['CVE-2024-10976', 'CVE-2025-8713']],
  [150013, ['CVE-2025-8713']],
  [150014, []],
  [160000, ['CVE-2024-10976', 'CVE-2024-4317', 'CVE-2025-8713']],
  [160005, ['CVE-2025-8713']],
  [170000, ['CVE-2024-10976', 'CVE-2025-8713']],
  [170005, ['CVE-2025-8713']],
  [170006, []],
  [180000, []],
];

test('server-rls-cve: each version is reported for exactly the CVEs its release notes list', () =>
  withDatabase(async (db) => {
    await fencedBase(db);
    for (const [version, cves] of EXPECTED) {
      const found = await findingsAt(db, version);
      assert.deepEqual(found.map((f) => f.object), cves, `server_version_num ${version}`);
    }
    const [old] = await findingsAt(db, 150002);
    assert.match(old!.detail, /^PostgreSQL 15\.2 is affected by CVE-2023-2455 \(fixed in 15\.3\)/);
    const eol = (await findingsAt(db, 110022)).find((f) => f.object === 'CVE-2024-10976')!;
    assert.match(eol.detail, /^PostgreSQL 11\.22 is affected by CVE-2024-10976 and its major version received no fix/);
    assert.match((await findingsAt(db, 90624))[0]!.detail, /^PostgreSQL 9\.6\.24 /);
  }),
);

test('server-rls-cve: a database whose pg_stats_ext predates the CVE-2024-4317 fix is reported until fix-CVE-2024-4317.sql runs in it', (t) =>
  withDatabase(async (db) => {
    const version = await serverVersion(db);
    if (version < 140000 || version >= 170000) return t.skip('CVE-2024-4317 concerns PostgreSQL 14 to 16 only');
    const { rows } = await db.admin.query<{ setting: string }>("SELECT setting FROM pg_config WHERE name = 'SHAREDIR'");
    const script = join(rows[0]!.setting, 'fix-CVE-2024-4317.sql');
    if (!existsSync(script)) return t.skip(`${script} is not on this machine (the server runs elsewhere)`);
    await fencedBase(db);
    // The view as it was before the fix: without the owner check the fix added.
    await db.admin.query(`DO $$ DECLARE d text; BEGIN
      d := replace(pg_get_viewdef('pg_catalog.pg_stats_ext'::regclass), 'pg_has_role(c.relowner, ''USAGE''::text) AND ', '');
      EXECUTE 'CREATE OR REPLACE VIEW pg_catalog.pg_stats_ext WITH (security_barrier) AS ' || d;
    END $$`);
    const before = (await auditOf(db)).findings.filter((f) => f.rule === 'server-rls-cve');
    assert.deepEqual(before.map((f) => f.object), ['CVE-2024-4317']);
    assert.match(before[0]!.detail, /pg_stats_ext views predate it/);
    assert.match(before[0]!.remediation!, /fix-CVE-2024-4317\.sql/);
    await db.admin.query(readFileSync(script, 'utf8')); // what the remediation says to run
    const after = (await auditOf(db)).findings.filter((f) => f.rule === 'server-rls-cve');
    assert.deepEqual(after, []);
  }),
);
