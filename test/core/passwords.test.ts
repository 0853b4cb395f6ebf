/** `init --app-password/--agent-password`: from the environment, sent as a SCRAM verifier, never printed. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { main } from '../../src/cli/main.ts';
import { scramVerifier } from '../../src/sql/password.ts';
import { urlForRole } from '../../src/embedded/database.ts';
import { createTestDatabase } from '../support/db.ts';

function io() {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { out: (s: string) => void out.push(s), err: (s: string) => void err.push(s), isTTY: false } };
}

test('init sets both passwords from the environment; the server holds a verifier of exactly that password', async () => {
  const db = await createTestDatabase();
  const saved = { ...process.env };
  try {
    process.env.TENANTFENCE_APP_PASSWORD = 'app-pässword-1';
    process.env.TENANTFENCE_AGENT_PASSWORD = 'agent password 2';
    const args = ['init', '--app-role', db.roles.app, '--agent-role', db.roles.agent, '--database-url', db.url];
    const printed = io();
    assert.equal(await main([...args, '--app-password', '--agent-password', '--print'], printed.io), 0, printed.err.join(''));
    const sql = printed.out.join('');
    assert.match(sql, new RegExp(`-- the password of ${db.roles.app} \\(from TENANTFENCE_APP_PASSWORD\\) is set as a SCRAM verifier and never printed`));
    assert.doesNotMatch(sql, /SCRAM-SHA-256\$|pässword|agent password 2/);

    const run = io();
    assert.equal(await main([...args, '--app-password', '--agent-password'], run.io), 0, run.err.join(''));
    for (const [role, password] of [[db.roles.app, 'app-pässword-1'], [db.roles.agent, 'agent password 2']] as const) {
      const { rows } = await db.admin.query('SELECT rolpassword FROM pg_authid WHERE rolname = $1', [role]);
      const stored: string = rows[0].rolpassword;
      const m = /^SCRAM-SHA-256\$4096:([^$]+)\$/.exec(stored);
      assert.ok(m, stored.slice(0, 20));
      assert.equal(stored, scramVerifier(password, Buffer.from(m[1]!, 'base64')), `${role}'s verifier is of its password`);
    }
    // a real SCRAM login, where the server asks for one (trust-auth servers accept anything)
    const { rows } = await db.admin.query(`SELECT count(*)::int AS n FROM pg_hba_file_rules WHERE auth_method = 'scram-sha-256'`);
    if (rows[0].n > 0) {
      const client = new pg.Client(urlForRole(db.url, db.roles.app, 'app-pässword-1'));
      await client.connect();
      await client.end();
    }

    delete process.env.TENANTFENCE_AGENT_PASSWORD;
    const missing = io();
    assert.equal(await main([...args, '--agent-password'], missing.io), 2);
    assert.match(missing.err.join(''), /^tenantfence: TF_USAGE: --agent-password reads the password from TENANTFENCE_AGENT_PASSWORD, which is not set/);
    const bad = io();
    assert.equal(await main([...args, '--app-password=secret'], bad.io), 2, 'a password on argv is refused');
  } finally {
    process.env = saved;
    await db.drop();
  }
});
