/** The CLI as a user runs it: a real process, real exit codes, no stack traces. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';
import { runCli } from '../support/cli.ts';

const run = runCli;

let db: TestDatabase;
before(async () => {
  db = await createTestDatabase();
});
after(() => db.drop());

test('demo --json: one JSON object, every check passes, the seed recipe leaks, tenantfence does not', () => {
  const r = run(['demo', '--json'], { DATABASE_URL: db.url });
  assert.equal(r.code, 0, r.err);
  const result = JSON.parse(r.out);
  assert.deepEqual(Object.keys(result), ['checks', 'attacks']);
  assert.ok(result.checks.length >= 5 && result.checks.every((c: { passed: boolean }) => c.passed));
  assert.ok(result.attacks.filter((a: { naive: string }) => a.naive === 'leaked').length >= 4);
  assert.ok(result.attacks.every((a: { fenced: string }) => a.fenced === 'blocked'));
  for (const id of ['set_config-in-select', 'set-local-switch', 'reset', 'commit-then-read', 'savepoint-switch', 'rollback-to-savepoint']) {
    assert.ok(result.attacks.some((a: { id: string }) => a.id === id), id);
  }
});

test('init generates a key once and prints it; the second run keeps it', () => {
  const first = run(['init', '--app-role', db.roles.app, '--agent-role', db.roles.agent], { DATABASE_URL: db.url });
  assert.equal(first.code, 0, first.err);
  assert.match(first.out, /TENANTFENCE_SECRET=[a-z0-9]+\.[A-Za-z0-9_-]{43}/);
  const second = run(['init', '--app-role', db.roles.app, '--agent-role', db.roles.agent], { DATABASE_URL: db.url });
  assert.equal(second.code, 0, second.err);
  assert.doesNotMatch(second.out, /TENANTFENCE_SECRET=/);
});

test('errors are one line with a code and exit 2, never a stack trace', () => {
  const cases: Array<[string[], Record<string, string>, RegExp]> = [
    [['init'], { DATABASE_URL: 'not a url' }, /TF_CONNECTION/],
    [['init'], { DATABASE_URL: 'postgres://nobody@127.0.0.1:1/x' }, /TF_CONNECTION/],
    [['protect', 'no_such_table'], { DATABASE_URL: db.url }, /TF_NO_TABLE|TF_NOT_INITIALISED/],
    [['protect'], { DATABASE_URL: db.url }, /TF_USAGE/],
    [['protect', 'a', '--bogus'], { DATABASE_URL: db.url }, /TF_USAGE/],
    [['nope'], {}, /TF_USAGE/],
    [['keys', 'retire'], { DATABASE_URL: db.url }, /TF_USAGE/],
  ];
  for (const [args, env, pattern] of cases) {
    const r = run(args, env);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
    assert.match(r.err, pattern);
    assert.doesNotMatch(r.err, /\n\s+at /, 'stack trace printed');
    assert.equal(r.err.trim().split('\n').length, 1);
  }
});

test('a role without the privileges init needs gets TF_PRIVILEGE and nothing is installed', async () => {
  const weak = db.role('tf_weak');
  await db.admin.query(`CREATE ROLE "${weak}" LOGIN PASSWORD '${db.password}'`);
  const { urlForRole } = await import('../../src/embedded/database.ts');
  const r = run(['init', '--app-role', `${weak}_app`], { DATABASE_URL: urlForRole(db.url, weak, db.password) });
  assert.equal(r.code, 2, r.err);
  assert.match(r.err, /TF_PRIVILEGE/);
  const { rows } = await db.admin.query(`SELECT count(*)::int AS n FROM pg_roles WHERE rolname = $1`, [`${weak}_app`]);
  assert.equal(rows[0].n, 0);
});

test('--help works for every command', () => {
  for (const cmd of ['init', 'protect', 'keys', 'demo']) {
    const r = run([cmd, '--help']);
    assert.equal(r.code, 0);
    assert.match(r.out, new RegExp(`^usage: tenantfence ${cmd}`));
  }
  const top = run(['--help']);
  assert.equal(top.code, 0);
  assert.match(top.out, /demo/);
});
