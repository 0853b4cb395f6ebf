/**
 * `init` refuses exactly what the audit reports as an error about its roles (issue 9 item 4, issue
 * 11 item 3): one rule set. Each setup is judged twice, by init and by the audit's role rules on
 * the roles afterwards, and the two must agree.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { init } from '../../src/cli/commands/init.ts';
import { runAudit } from '../../src/audit/runner.ts';
import { loadRules } from '../../src/audit/registry.ts';
import { ErrorCodes } from '../../src/errors.ts';
import { ident } from '../../src/sql/quote.ts';
import { createTestDatabase } from '../support/db.ts';

const ROLE_RULES = loadRules().filter((r) => r.scope === 'role');

const SETUPS: Record<string, { sql: (app: string, agent: string) => string; refused: RegExp | null }> = {
  'plain roles': { sql: () => '', refused: null },
  // init used to accept this agent: its old list of dangerous roles left pg_signal_backend out
  'agent in pg_signal_backend': { sql: (_a, agent) => `GRANT pg_signal_backend TO ${agent}`, refused: /agent-role-dangerous-privilege reports: .*pg_signal_backend/ },
  'app in pg_monitor': { sql: (app) => `GRANT pg_monitor TO ${app}`, refused: /role-can-read-other-sessions reports: .*pg_monitor/ },
  'app with BYPASSRLS': { sql: (app) => `ALTER ROLE ${app} BYPASSRLS`, refused: /app-role-bypassrls reports: The app role .* has BYPASSRLS/ },
  // init corrects the agent's own attributes (NOBYPASSRLS ...), so that is no refusal
  'agent with BYPASSRLS': { sql: (_a, agent) => `ALTER ROLE ${agent} BYPASSRLS`, refused: null },
  'agent owns a tenant table': {
    sql: (_a, agent) => `CREATE TABLE orders (tenant_id uuid NOT NULL); ALTER TABLE orders OWNER TO ${agent}`,
    refused: /(agent-role-dangerous-privilege|app-role-owns-table) reports: .*public\.orders/,
  },
};

for (const [name, setup] of Object.entries(SETUPS)) {
  test(`init and the audit agree: ${name}`, async () => {
    const db = await createTestDatabase();
    try {
      await db.admin.query(`CREATE ROLE ${ident(db.roles.app)} LOGIN; CREATE ROLE ${ident(db.roles.agent)} LOGIN`);
      const sql = setup.sql(ident(db.roles.app), ident(db.roles.agent));
      if (sql) await db.admin.query(sql);
      const attempt = init({ db: db.admin, appRole: db.roles.app, agentRole: db.roles.agent });
      if (setup.refused) {
        await assert.rejects(attempt, (e: { code?: string; message: string }) => e.code === ErrorCodes.UNSAFE_ROLE && setup.refused!.test(e.message));
        const { rows } = await db.admin.query(`SELECT to_regnamespace('tenantfence') IS NULL AS absent`);
        assert.equal(rows[0].absent, true, 'a refusal applies nothing');
      } else {
        await attempt;
      }
      // The audit, run afterwards as CI would, reports a role error exactly when init refused.
      const report = await runAudit(db.admin, { schemas: ['public'], tenantColumn: 'tenant_id', appRole: db.roles.app, agentRole: db.roles.agent, rules: ROLE_RULES });
      const errors = report.findings.filter((f) => f.level === 'error').map((f) => `${f.rule} ${f.object}`);
      if (setup.refused) assert.notDeepEqual(errors, [], 'the audit reports what init refused');
      else assert.deepEqual(errors, [], 'nothing the audit reports as an error was accepted');
    } finally {
      await db.drop();
    }
  });
}

test('init --print says the next step for the key it leaves out', async () => {
  const db = await createTestDatabase();
  try {
    const bare = await init({ db: db.admin, appRole: db.roles.app, agentRole: db.roles.agent, print: true });
    assert.match(bare.sql, /\n-- Next: this SQL stores no signing key\. After applying it, run `tenantfence keys rotate` against the database: it stores a new key and prints TENANTFENCE_SECRET once\.\n$/);
    const withKey = await init({ db: db.admin, appRole: db.roles.app, agentRole: db.roles.agent, print: true, secret: `k9.${Buffer.alloc(32, 7).toString('base64url')}` });
    assert.match(withKey.sql, /-- Next: store key k9 \(not printed\): after applying this SQL, run `tenantfence init` once with TENANTFENCE_SECRET set/);
    // the rehearsal left nothing behind
    const { rows } = await db.admin.query(`SELECT to_regnamespace('tenantfence') IS NULL AS absent`);
    assert.equal(rows[0].absent, true);
  } finally {
    await db.drop();
  }
});
