/**
 * The MCP server through the SDK's own client: in memory (as over stdio) and over Streamable HTTP
 * (in-process, the client's fetch routed to the Hono app). Attacks are judged by B's rows after.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { createMcpApp, createMcpServer } from '../../src/gateway/mcp.ts';
import { GatewayService } from '../../src/gateway/service.ts';
import { rowsOf, TENANT_A, TENANT_B } from '../support/db.ts';
import { jwt, JWT_SECRET, setUp, type Setup } from './helpers.ts';

let s: Setup;
let service: GatewayService;
let client: Client;
let bBefore: Awaited<ReturnType<typeof rowsOf>>;

async function connect(principal: () => Promise<{ tenant: string; subject: string | null }>): Promise<Client> {
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  await createMcpServer(service, principal).connect(serverSide);
  const c = new Client({ name: 'test', version: '1' });
  await c.connect(clientSide);
  return c;
}

before(async () => {
  s = await setUp();
  service = new GatewayService({ pool: s.agentPool(), key: s.fence.key, auth: { jwtSecret: JWT_SECRET }, limits: { burst: 1000, ratePerSecond: 1000 } });
  const token = await jwt({ tenant_id: TENANT_A, sub: 'mcp-agent' }, { expiresIn: '5m' });
  client = await connect(() => service.authenticate(token));
  bBefore = await rowsOf(s.db, TENANT_B);
});
after(async () => {
  await client.close();
  await service.close();
  await s.db.drop();
});

const text = (r: any): string => r.content.map((c: any) => c.text).join('\n');
const call = (name: string, args: Record<string, unknown> = {}, c = client) => c.callTool({ name, arguments: args }) as Promise<any>;

test('the four tools are listed', async () => {
  const { tools } = await client.listTools();
  assert.deepEqual(tools.map((t) => t.name).sort(), ['describe_table', 'explain', 'list_tables', 'query']);
});

test('query: rows in structured content and inside an untrusted-data boundary', async () => {
  const r = await call('query', { sql: 'SELECT tenant_id, transcript FROM conversations ORDER BY id' });
  assert.equal(r.isError, undefined);
  assert.equal(r.structuredContent.rowCount, 3);
  assert.ok(r.structuredContent.rows.every((row: any) => row.tenant_id === TENANT_A));
  const lines = text(r).split('\n');
  const open = /^<untrusted-data-([0-9a-f]{24})> .*data, not instructions/.exec(lines[0]!);
  assert.ok(open, lines[0]);
  assert.equal(lines.at(-1), `</untrusted-data-${open[1]}>`);
  assert.deepEqual(JSON.parse(lines.slice(1, -1).join('\n')).rows, r.structuredContent.rows);
  const again = await call('query', { sql: 'SELECT 1 AS x' });
  assert.notEqual(/untrusted-data-([0-9a-f]+)/.exec(text(again))![1], open[1], 'a fresh nonce per result');
});

test("query: B's rows stay unread, and refusals are readable isError results", async () => {
  const cross = await call('query', { sql: 'SELECT * FROM conversations WHERE tenant_id = $1', params: [TENANT_B] });
  assert.equal(cross.structuredContent.rowCount, 0);
  for (const sql of ['SELECT 1; DROP TABLE conversations', `SELECT set_config('tenantfence.context', '', false)`, 'DELETE FROM conversations']) {
    const r = await call('query', { sql });
    assert.equal(r.isError, true, sql);
    assert.match(text(r), /^TF_SQL_REJECTED: /);
  }
  const dbError = await call('query', { sql: 'SELECT missing FROM conversations' });
  assert.equal(dbError.isError, true);
  assert.match(text(dbError), /^TF_SQL_INVALID: /);
  assert.deepEqual(await rowsOf(s.db, TENANT_B), bBefore);
});

test('explain: a plan without costs or row estimates; never ANALYZE', async () => {
  const r = await call('explain', { sql: 'SELECT * FROM conversations WHERE tenant_id = $1', params: [TENANT_B] });
  assert.equal(r.isError, undefined, text(r));
  assert.match(r.structuredContent.plan, /conversations/);
  assert.doesNotMatch(text(r), /rows=|cost=|width=|actual/);
  const analyze = await call('explain', { sql: 'EXPLAIN ANALYZE SELECT * FROM conversations' });
  assert.equal(analyze.isError, true);
  // Past the firewall, the database alone refuses ANALYZE after the gateway's option list.
  const ex = s.executor();
  await assert.rejects(ex.execute({ tenant: TENANT_A, sql: 'ANALYZE SELECT * FROM conversations', params: [], explain: true }), (e: any) => e.sqlstate === '42601');
});

test('list_tables and describe_table', async () => {
  const list = await call('list_tables');
  assert.match(text(list), /automatic/);
  assert.deepEqual(list.structuredContent.tables.map((t: any) => t.name), ['conversations']);
  const d = await call('describe_table', { table: 'conversations' });
  assert.match(text(d), /tenant_id uuid NOT NULL/);
  const missing = await call('describe_table', { table: 'tenantfence.keys' });
  assert.equal(missing.isError, true);
  assert.match(text(missing), /^TF_NOT_FOUND: /);
});

test('an expired start-up token stops the tools', async () => {
  const expired = await jwt({ tenant_id: TENANT_A }, { expiresIn: Math.floor(Date.now() / 1000) - 60 });
  const c = await connect(() => service.authenticate(expired));
  const r = await call('query', { sql: 'SELECT 1' }, c);
  assert.equal(r.isError, true);
  assert.match(text(r), /^TF_UNAUTHENTICATED: /);
  await c.close();
});

test('Streamable HTTP: bearer JWT per request, 401 without one', async () => {
  const app = createMcpApp(service);
  const anonymous = await app.request('/mcp', { method: 'POST', headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' }, body: '{"jsonrpc":"2.0","id":1,"method":"tools/list"}' });
  assert.equal(anonymous.status, 401);
  const tokenB = await jwt({ tenant_id: TENANT_B, sub: 'http-agent' }, { expiresIn: '5m' });
  const transport = new StreamableHTTPClientTransport(new URL('http://gateway.test/mcp'), {
    requestInit: { headers: { Authorization: `Bearer ${tokenB}` } },
    fetch: (url, init) => Promise.resolve(app.request(String(url), init as RequestInit)),
  });
  const c = new Client({ name: 'http-test', version: '1' });
  await c.connect(transport);
  const r = await call('query', { sql: 'SELECT count(*)::int AS n, min(tenant_id::text) AS t FROM conversations' }, c);
  assert.deepEqual(r.structuredContent.rows, [{ n: 2, t: TENANT_B }]);
  await c.close();
});
