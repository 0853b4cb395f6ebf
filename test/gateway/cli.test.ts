/**
 * The commands as users run them: `serve` on a real loopback port, and `mcp` as a child process
 * spoken to over stdio by the SDK's client.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { main } from '../../src/cli/main.ts';
import { serve } from '../../src/cli/commands/serve.ts';
import { formatSecret } from '../../src/context/token.ts';
import { urlForRole } from '../../src/embedded/database.ts';
import { TENANT_A, TENANT_B } from '../support/db.ts';
import { jwt, JWT_SECRET, setUp, type Setup } from './helpers.ts';

let s: Setup;
let env: Record<string, string>;
/** An 8 MiB value from allowlisted functions: over the 4 MiB response cap, under the firewall's 32 MiB value budget. */
const BIG = `${'replace('.repeat(7)}'xxxx'${", 'x', 'xxxxxxxx')".repeat(7)}`;
before(async () => {
  s = await setUp();
  env = {
    PATH: process.env.PATH ?? '',
    TENANTFENCE_AGENT_DATABASE_URL: urlForRole(s.db.url, s.db.roles.agent, s.db.password),
    TENANTFENCE_SECRET: formatSecret(s.fence.key),
    TENANTFENCE_JWT_SECRET: JWT_SECRET,
  };
});
after(() => s.db.drop());

test('serve and mcp have --help and are listed', async () => {
  let out = '';
  const io = { out: (t: string) => void (out += t), err: () => undefined, isTTY: false };
  assert.equal(await main(['serve', '--help'], io), 0);
  assert.match(out, /--port 8787/);
  assert.equal(await main(['mcp', '--help'], io), 0);
  assert.match(out, /--token JWT/);
  assert.equal(await main(['--help'], io), 0);
  assert.match(out, /serve .*gateway/);
});

test('mcp over stdio without a token is a usage error (exit 2)', async () => {
  let err = '';
  const io = { out: () => undefined, err: (t: string) => void (err += t), isTTY: false };
  const saved = process.env.TENANTFENCE_TOKEN;
  delete process.env.TENANTFENCE_TOKEN;
  assert.equal(await main(['mcp'], io), 2);
  if (saved !== undefined) process.env.TENANTFENCE_TOKEN = saved;
  assert.match(err, /TF_USAGE/);
});

test('serve: a real HTTP server on loopback answers as the JWT tenant', async () => {
  const server = await serve({ port: 0, env });
  try {
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const token = await jwt({ tenant_id: TENANT_B }, { expiresIn: '1m' });
    const res = await fetch(`${server.url}/v1/query`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ sql: 'SELECT DISTINCT tenant_id FROM conversations' }),
    });
    assert.equal(res.status, 200);
    assert.deepEqual(((await res.json()) as any).rows, [{ tenant_id: TENANT_B }]);
    const write = await fetch(`${server.url}/v1/query`, { method: 'POST', headers: { Authorization: `Bearer ${token}` }, body: '{"sql":"DELETE FROM conversations"}' });
    assert.equal(write.status, 422, 'read-only by default');
    // A row past the response cap (4 MiB by default) fails that request only.
    const big = await fetch(`${server.url}/v1/query`, { method: 'POST', headers: { Authorization: `Bearer ${token}` }, body: JSON.stringify({ sql: `SELECT ${BIG} AS big` }) });
    assert.equal(big.status, 400);
    assert.equal(((await big.json()) as any).error.code, 'TF_RESULT_TOO_LARGE');
    const after = await fetch(`${server.url}/healthz`);
    assert.equal(after.status, 200);
  } finally {
    await server.close();
  }
});

test('mcp over stdio: a child process serving the start-up token tenant', async () => {
  const token = await jwt({ tenant_id: TENANT_A, sub: 'stdio' }, { expiresIn: '5m' });
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: ['--import', 'tsx', 'src/cli/bin.ts', 'mcp', '--token', token],
    env,
    stderr: 'ignore',
  });
  const client = new Client({ name: 'cli-test', version: '1' });
  await client.connect(transport);
  try {
    const big = (await client.callTool({ name: 'query', arguments: { sql: `SELECT ${BIG} AS big` } })) as any;
    assert.equal(big.isError, true);
    assert.match(big.content[0].text, /^TF_RESULT_TOO_LARGE: /);
    // The child process survived it and serves the next call.
    const r = (await client.callTool({ name: 'query', arguments: { sql: 'SELECT count(*)::int AS n FROM conversations' } })) as any;
    assert.deepEqual(r.structuredContent.rows, [{ n: 3 }]);
  } finally {
    await client.close();
  }
});
