/** `tenantfence audit` through the argv layer, in-process: exit codes, formats, baselines. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.ts';
import type { Io } from '../../src/cli/io.ts';
import type { TestDatabase } from '../support/db.ts';
import { fencedBase, withDatabase } from './support.ts';

async function run(db: TestDatabase, ...args: string[]): Promise<{ code: number; out: string; err: string }> {
  return runOn(db, false, ...args);
}

async function runOn(db: TestDatabase, isTTY: boolean, ...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: Io = { out: (t) => void (out += t), err: (t) => void (err += t), isTTY };
  const code = await main(['audit', '--database-url', db.url, '--app-role', db.roles.app, '--agent-role', db.roles.agent, ...args], io);
  return { code, out, err };
}

test('exit codes follow --fail-on; usage and connection errors exit 2 without a stack trace', () =>
  withDatabase(async (db) => {
    await fencedBase(db);
    let r = await run(db);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^0 errors, 0 warnings, 0 info on 1 tenant table\.$/m);

    await db.admin.query('CREATE TABLE events (tenant_id uuid NOT NULL, n bigserial, PRIMARY KEY (tenant_id, n))');
    await db.admin.query('ALTER TABLE events ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY');
    // Now: only info findings (no policy yet; a shared sequence).
    assert.equal((await run(db)).code, 0);
    assert.equal((await run(db, '--fail-on', 'warn')).code, 0);
    assert.equal((await run(db, '--fail-on', 'info')).code, 1);

    await db.admin.query('ALTER TABLE events DISABLE ROW LEVEL SECURITY');
    r = await run(db);
    assert.equal(r.code, 1);
    assert.match(r.out, /^public\.events \(1 error, 1 info\)\n {2}error rls-disabled\n/m);
    assert.doesNotMatch(r.out, /\x1b\[/, 'no colour when stdout is not a TTY');
    assert.match((await runOn(db, true)).out, /\x1b\[1;31merror\x1b\[0m \x1b\[31mrls-disabled\x1b\[0m/, 'colour on a TTY');
    assert.equal((await run(db, '--fail-on', 'never')).code, 0);

    for (const bad of [['--format', 'pdf'], ['--fail-on', 'sometimes'], ['--schema', ','], ['stray'], ['--bogus']]) {
      r = await run(db, ...bad);
      assert.equal(r.code, 2, bad.join(' '));
      assert.match(r.err, /^tenantfence: TF_USAGE: /);
    }
    let out = '';
    let err = '';
    const io: Io = { out: (t) => void (out += t), err: (t) => void (err += t), isTTY: false };
    const code = await main(['audit', '--database-url', 'postgres://nobody@127.0.0.1:1/none'], io);
    assert.equal(code, 2);
    assert.match(err, /TF_CONNECTION/);
    assert.doesNotMatch(err + out, /\n\s+at /, 'no stack trace');
  }),
);

test('--write-baseline accepts the current findings; --baseline then reports only new ones', () =>
  withDatabase(async (db) => {
    const dir = mkdtempSync(join(tmpdir(), 'tf-baseline-'));
    try {
      await fencedBase(db);
      await db.admin.query('CREATE TABLE legacy (tenant_id uuid NOT NULL, id bigserial PRIMARY KEY)');
      const file = join(dir, 'baseline.json');
      let r = await run(db, '--write-baseline', file);
      assert.equal(r.code, 0, 'written findings count as accepted');
      const baseline = JSON.parse(readFileSync(file, 'utf8'));
      assert.equal(baseline.format, 'tenantfence-audit-baseline/1');
      const prints = baseline.findings.map((f: { fingerprint: string }) => f.fingerprint);
      assert.deepEqual(prints, [...prints].sort());
      assert.ok(baseline.findings.some((f: { rule: string; object: string }) => f.rule === 'rls-disabled' && f.object === 'public.legacy'));

      r = await run(db, '--baseline', file, '--fail-on', 'info');
      assert.equal(r.code, 0, r.out);
      assert.match(r.out, new RegExp(`\\(${prints.length} suppressed by the baseline\\)`));

      await db.admin.query('CREATE TABLE newer (tenant_id uuid NOT NULL, id uuid PRIMARY KEY)');
      r = await run(db, '--baseline', file, '--format', 'json');
      assert.equal(r.code, 1);
      const fresh = JSON.parse(r.out).findings as Array<{ rule: string; object: string }>;
      assert.deepEqual([...new Set(fresh.map((f) => f.object))], ['public.newer']);

      r = await run(db, '--baseline', join(dir, 'missing.json'));
      assert.equal(r.code, 2);
      assert.match(r.err, /TF_USAGE: Cannot read the baseline/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }),
);

test('--output writes the report to a file and prints the summary on stderr', () =>
  withDatabase(async (db) => {
    const dir = mkdtempSync(join(tmpdir(), 'tf-output-'));
    try {
      await fencedBase(db);
      await db.admin.query('CREATE TABLE plain (tenant_id uuid NOT NULL, id uuid NOT NULL, PRIMARY KEY (tenant_id, id))');
      const file = join(dir, 'report.json');
      const r = await run(db, '--format', 'json', '--output', file);
      assert.equal(r.code, 1);
      assert.equal(r.out, '');
      assert.match(r.err, /1 error, 0 warnings, 0 info on 2 tenant tables\. Report written to /);
      const report = JSON.parse(readFileSync(file, 'utf8'));
      assert.deepEqual(Object.keys(report), ['format', 'summary', 'notes', 'findings', 'fixes']);
      assert.equal(report.format, 'tenantfence-audit/1');
      assert.deepEqual({ ...report.summary, serverVersion: typeof report.summary.serverVersion },
        { errors: 1, warnings: 0, info: 0, tenantTables: 2, suppressed: 0, database: db.name, serverVersion: 'string' });
      assert.deepEqual(Object.keys(report.findings[0]), ['rule', 'title', 'level', 'category', 'exposes', 'object', 'detail', 'remediation', 'fingerprint']);
      assert.deepEqual(report.fixes, [{ remediation: report.findings[0].remediation, findings: [report.findings[0].fingerprint] }]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }),
);
