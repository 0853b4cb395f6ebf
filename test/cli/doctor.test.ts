/**
 * `tenantfence doctor` finds what makes a deployment fail, above all silently: a key the database
 * does not know or has retired (every query returns no rows). Run in-process through the CLI.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { main } from '../../src/cli/main.ts';
import { formatSecret, generateKey } from '../../src/context/token.ts';
import { urlForRole } from '../../src/embedded/database.ts';
import { ident } from '../../src/sql/quote.ts';
import { createTestDatabase, installFence, type Fenced, type TestDatabase } from '../support/db.ts';

let db: TestDatabase;
let fence: Fenced;
before(async () => {
  db = await createTestDatabase();
  fence = await installFence(db);
});
after(() => db.drop());

async function doctor(env: Record<string, string | undefined> = {}): Promise<{ code: number; fails: string[]; out: string }> {
  const saved = { ...process.env };
  Object.assign(process.env, {
    TENANTFENCE_SECRET: formatSecret(fence.key),
    TENANTFENCE_APP_DATABASE_URL: urlForRole(db.url, db.roles.app, db.password),
    TENANTFENCE_AGENT_DATABASE_URL: urlForRole(db.url, db.roles.agent, db.password),
  });
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete process.env[k]; else process.env[k] = v;
  const out: string[] = [];
  try {
    const code = await main(['doctor', '--app-role', db.roles.app, '--agent-role', db.roles.agent, '--database-url', db.url], {
      out: (s) => void out.push(s), err: (s) => void out.push(s), isTTY: false,
    });
    const text = out.join('');
    return { code, out: text, fails: text.split('\n').filter((l) => l.startsWith('FAIL')).map((l) => l.replace(/^FAIL\s+/, '')) };
  } finally {
    process.env = saved;
  }
}

test('a healthy deployment: every check ok, exit 0', async () => {
  const r = await doctor();
  assert.equal(r.code, 0, r.out);
  assert.deepEqual(r.fails, []);
  assert.match(r.out, /ok {4}key: key t1 is stored and active/);
  assert.match(r.out, /ok {4}app login: .* logs in and its signed context verifies/);
  assert.match(r.out, /ok {4}agent login: /);
});

test('the key: missing, unknown to the database, stored with another secret, retired', async () => {
  let r = await doctor({ TENANTFENCE_SECRET: undefined });
  assert.equal(r.code, 1);
  assert.deepEqual(r.fails, ['key: TENANTFENCE_SECRET is not set: the application cannot sign a tenant context.']);
  r = await doctor({ TENANTFENCE_SECRET: formatSecret(generateKey('zz9')) });
  assert.equal(r.code, 1);
  assert.match(r.fails.join('\n'), /^key: Key zz9 in TENANTFENCE_SECRET is unknown to this database: every token verifies to no tenant/);
  r = await doctor({ TENANTFENCE_SECRET: formatSecret(generateKey('t1')) });
  assert.match(r.fails.join('\n'), /^key: Key t1 in TENANTFENCE_SECRET is stored here with another secret/);
  await db.admin.query(`INSERT INTO tenantfence.keys (kid, inner_pad, outer_pad) SELECT 't2', inner_pad, outer_pad FROM tenantfence.keys WHERE kid = 't1'`);
  await db.admin.query(`UPDATE tenantfence.keys SET retired_at = now() WHERE kid = 't1'`);
  try {
    r = await doctor();
    assert.equal(r.code, 1);
    assert.match(r.fails.join('\n'), /^key: Key t1 in TENANTFENCE_SECRET is retired/);
  } finally {
    await db.admin.query(`UPDATE tenantfence.keys SET retired_at = NULL WHERE kid = 't1'; DELETE FROM tenantfence.keys WHERE kid = 't2'`);
  }
});

test('unsafe roles, open tables, a table closed to everyone, an agent that cannot log in', async () => {
  await db.admin.query(`GRANT pg_monitor TO ${ident(db.roles.app)};
    CREATE TABLE open_notes (tenant_id uuid NOT NULL, body text);
    CREATE TABLE shut_notes (tenant_id uuid NOT NULL, body text); ALTER TABLE shut_notes ENABLE ROW LEVEL SECURITY;
    ALTER ROLE ${ident(db.roles.agent)} NOLOGIN`);
  try {
    const r = await doctor();
    assert.equal(r.code, 1);
    const checks = r.fails.map((f) => f.split(':')[0]);
    assert.deepEqual(checks.sort(), ['agent login', 'rls-disabled', 'rls-enabled-no-policy', 'role-can-read-other-sessions'].sort(), r.out);
    assert.match(r.out, /FAIL {2}agent login: .* cannot log in/);
  } finally {
    await db.admin.query(`REVOKE pg_monitor FROM ${ident(db.roles.app)}; DROP TABLE open_notes, shut_notes;
      ALTER ROLE ${ident(db.roles.agent)} LOGIN`);
  }
});

test('before init: one problem, and it names the command', async () => {
  const other = await createTestDatabase();
  try {
    const out: string[] = [];
    const code = await main(['doctor', '--database-url', other.url], { out: (s) => void out.push(s), err: (s) => void out.push(s), isTTY: false });
    assert.equal(code, 1);
    assert.match(out.join(''), /FAIL {2}init: This database has no tenantfence schema: run `tenantfence init`\./);
  } finally {
    await other.drop();
  }
});
