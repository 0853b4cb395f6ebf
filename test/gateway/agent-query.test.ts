/**
 * agentQuery: LLM-written SQL in-process, through the firewall, as the agent role, with its audit
 * record; judged on tenant B's rows and on the records.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { agentQuery, AgentQueryError } from '../../src/gateway/agent-query.ts';
import { runWithTenant } from '../../src/context/storage.ts';
import { ErrorCodes } from '../../src/errors.ts';
import { rowsOf, TENANT_A, TENANT_B } from '../support/db.ts';
import { auditRows, setUp, type Setup } from './helpers.ts';

let s: Setup;
before(async () => {
  s = await setUp();
});
after(() => s.db.drop());

test('agentQuery returns only the tenant\'s rows and leaves an audit record', async () => {
  const pool = s.agentPool();
  const o = { key: s.fence.key, principal: 'support-bot' };
  const a = await agentQuery(pool, TENANT_A, 'SELECT transcript FROM conversations ORDER BY transcript', [], o);
  assert.deepEqual(a.rows.map((r) => r.transcript), (await rowsOf(s.db, TENANT_A)).map((r) => r.transcript).sort());
  const b = await runWithTenant(TENANT_B, () => agentQuery(pool, undefined, 'SELECT count(*)::int AS n FROM conversations WHERE transcript LIKE $1', ['secret%'], o));
  assert.equal(b.rows[0]!.n, 2);
  const records = await auditRows(s.db);
  assert.ok(records.some((r) => r.statement === 'SELECT transcript FROM conversations ORDER BY transcript' && r.tenant_id === TENANT_A && r.principal === 'support-bot'));
});

test('agentQuery refuses what the firewall refuses, and B\'s rows stay unread and unchanged', async () => {
  const pool = s.agentPool();
  const o = { key: s.fence.key };
  const before = await rowsOf(s.db, TENANT_B);
  const attacks = [
    `SELECT set_config('tenantfence.context', 'forged', true)`,
    `UPDATE conversations SET transcript = 'pwned' WHERE tenant_id = '${TENANT_B}'`,
    'SELECT * FROM pg_stat_activity',
    'SELECT 1; SELECT transcript FROM conversations',
  ];
  for (const sql of attacks) {
    await assert.rejects(agentQuery(pool, TENANT_A, sql, [], o), (e: unknown) => e instanceof AgentQueryError && e.code === ErrorCodes.SQL_REJECTED && typeof e.reason === 'string', sql);
  }
  const seen = await agentQuery(pool, TENANT_A, 'SELECT transcript FROM conversations WHERE tenant_id = $1', [TENANT_B], o);
  assert.equal(seen.rows.length, 0);
  assert.deepEqual(await rowsOf(s.db, TENANT_B), before);
  await assert.rejects(agentQuery(pool, undefined, 'SELECT 1', [], o), (e: { code?: string }) => e.code === ErrorCodes.NO_TENANT);
});
