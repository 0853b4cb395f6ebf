/**
 * What one statement may make a backend allocate (issue 10, item 2), measured: the backend's peak
 * resident memory (VmHWM in /proc/<pid>/status, readable when the tests run as root or as the
 * server's OS user). `work_mem` does not bound values built by expressions, so the firewall's
 * static bound (firewall-size.ts) is what does: the red team's nested-string shapes are refused,
 * and the largest shape under the budget stays within a small multiple of it.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createGateway, type GatewayApp } from '../../src/gateway/http.ts';
import { TENANT_A } from '../support/db.ts';
import { jwt, JWT_SECRET, postQuery, setUp, type Setup } from './helpers.ts';

let s: Setup;
let app: GatewayApp;
let token: string;
let pid: number;

const MiB = 1024 * 1024;
const nested = (depth: number) => `length(${'replace('.repeat(depth)}'aaaaaaaa'${", 'a', 'aaaaaaaa')".repeat(depth)})`;
const peak = (): number => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;

before(async () => {
  s = await setUp();
  // One agent connection, so the backend measured is the one that ran the statement.
  app = createGateway({ pool: s.agentPool({ max: 1 }), auditPool: s.agentPool(), key: s.fence.key, auth: { jwtSecret: JWT_SECRET }, statementTimeoutMs: 20_000 });
  token = await jwt({ tenant_id: TENANT_A, sub: 'mem' }, { expiresIn: '5m' });
  assert.equal((await postQuery(app, token, { sql: 'SELECT count(*) FROM conversations' })).status, 200);
  // The agent connection is the one whose last statement was not an audit record (the audit pool's was).
  const { rows } = await s.db.admin.query("SELECT pid FROM pg_stat_activity WHERE usename = $1 AND query NOT LIKE '%audit_append%'", [s.db.roles.agent]);
  assert.equal(rows.length, 1);
  pid = rows[0].pid;
});
after(async () => {
  await app.close();
  await s.db.drop();
});

test('nested size-growing functions are refused before they reach the backend; the largest accepted shape stays bounded', async (t) => {
  let base: number;
  try {
    base = peak();
  } catch {
    t.skip('the backend\'s /proc status is not readable (run the tests as root or as the server\'s OS user)');
    return;
  }
  // The red team's shapes: 8 levels (one value of 134 MB), and four of them side by side.
  for (const sql of [`SELECT ${nested(8)}`, `SELECT ${[1, 2, 3, 4].map(() => nested(8)).join(', ')}`]) {
    const r = await postQuery(app, token, { sql });
    assert.equal(r.status, 422, JSON.stringify(r.body));
    assert.equal(r.body.error.reason, 'too_large');
  }
  assert.ok(peak() - base < 8 * MiB, `the backend grew ${Math.round((peak() - base) / MiB)} MiB on refused statements`);
  // 7 levels: a 16 MiB value, under the 32 MiB budget.
  const r = await postQuery(app, token, { sql: `SELECT ${nested(7)} AS n` });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual(r.body.rows, [{ n: 16 * MiB }]);
  const grown = peak() - base;
  t.diagnostic(`backend VmHWM grew ${Math.round(grown / MiB)} MiB for the largest accepted nesting (budget 32 MiB)`);
  assert.ok(grown < 4 * 32 * MiB, `the backend grew ${Math.round(grown / MiB)} MiB`);
});
