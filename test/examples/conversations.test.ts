/**
 * The conversations example (examples/conversations/), in-process with app.request(), on a test
 * database set up the way its one-command start sets up the embedded one: the README's walkthrough
 * as tenant acme, as tenant globex, and the attacks that must fail, judged on the rows afterwards.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { SignJWT } from 'jose';
import { drizzle } from 'drizzle-orm/node-postgres';
import { createApp } from '../../examples/conversations/app.ts';
import { setUpDatabase, TENANTS } from '../../examples/conversations/main.ts';
import { GatewayService } from '../../src/gateway/index.ts';
import { formatSecret, generateKey } from '../../src/context/token.ts';
import { createTestDatabase, rowsOf, type TestDatabase } from '../support/db.ts';

const jwtSecret = 'example-secret-of-at-least-thirty-two-bytes';
const key = generateKey('example');
let db: TestDatabase;
let agent: GatewayService;
let app: ReturnType<typeof createApp>;
let acme: string;
let globex: string;

before(async () => {
  db = await createTestDatabase();
  await setUpDatabase(db.admin, db.roles, db.password, formatSecret(key));
  agent = new GatewayService({ key, auth: { jwtSecret }, pool: db.pool(db.roles.agent, { pipeline: true } as never) });
  await agent.start();
  app = createApp({ db: drizzle({ client: db.pool(db.roles.app, { pipeline: true } as never) }), agent, auth: { jwtSecret }, fence: { key } });
  const token = (tenant: string) => new SignJWT({ tenant_id: tenant }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('5m').sign(new TextEncoder().encode(jwtSecret));
  acme = await token(TENANTS.acme);
  globex = await token(TENANTS.globex);
});
after(async () => {
  await agent?.close();
  await db?.drop();
});

const call = async (token: string | null, method: string, path: string, body?: unknown) => {
  const res = await app.request(path, {
    method,
    headers: { ...(token ? { Authorization: `Bearer ${token}` } : {}), 'Content-Type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json()) as any };
};

test('each tenant lists, creates and reads only its own conversations', async () => {
  const a = await call(acme, 'GET', '/conversations');
  assert.equal(a.status, 200);
  assert.deepEqual([...new Set(a.body.map((r: { tenantId: string }) => r.tenantId))], [TENANTS.acme]);
  assert.equal(a.body.length, 2);
  const g = await call(globex, 'GET', '/conversations');
  assert.deepEqual(g.body.map((r: { transcript: string }) => r.transcript), ['globex: invoice dispute, card ending 4242']);

  const created = await call(acme, 'POST', '/conversations', { transcript: 'acme: new ticket' });
  assert.equal(created.status, 201);
  assert.equal(created.body.tenantId, TENANTS.acme);
  assert.equal((await call(acme, 'GET', `/conversations/${created.body.id}`)).status, 200);
  // Globex asks for acme's row by id: not found, not forbidden (no existence oracle).
  assert.equal((await call(globex, 'GET', `/conversations/${created.body.id}`)).status, 404);
});

test('no token or a forged one: 401 and nothing runs', async () => {
  assert.equal((await call(null, 'GET', '/conversations')).status, 401);
  const forged = await new SignJWT({ tenant_id: TENANTS.globex }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('5m').sign(new TextEncoder().encode('not-the-secret-but-long-enough-to-sign-with'));
  const res = await call(forged, 'POST', '/conversations', { transcript: 'planted' });
  assert.equal(res.status, 401);
  assert.equal(res.body.error.code, 'TF_UNAUTHENTICATED');
  assert.ok(!(await rowsOf(db, TENANTS.globex)).some((r) => r.transcript === 'planted'));
});

test('/agent/query: the agent\'s SQL sees its tenant only; the attacks fail', async () => {
  const globexBefore = await rowsOf(db, TENANTS.globex);
  const mine = await call(acme, 'POST', '/agent/query', { sql: 'SELECT transcript FROM conversations ORDER BY id' });
  assert.equal(mine.status, 200);
  assert.ok(mine.body.rows.length >= 2 && mine.body.rows.every((r: { transcript: string }) => r.transcript.startsWith('acme')));

  const named = await call(acme, 'POST', '/agent/query', { sql: 'SELECT transcript FROM conversations WHERE tenant_id = $1', params: [TENANTS.globex] });
  assert.equal(named.status, 200);
  assert.deepEqual(named.body.rows, []);

  const switched = await call(acme, 'POST', '/agent/query', { sql: `SELECT set_config('tenantfence.context', 'forged', true)` });
  assert.equal(switched.status, 422);
  assert.equal(switched.body.error.code, 'TF_SQL_REJECTED');

  const write = await call(acme, 'POST', '/agent/query', { sql: 'DELETE FROM conversations' });
  assert.notEqual(write.status, 200);
  assert.deepEqual(await rowsOf(db, TENANTS.globex), globexBefore);
});
