/** Per-tenant limits: the token bucket and the concurrency cap, alone and through HTTP (429). */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { TenantLimiter } from '../../src/gateway/limits.ts';
import { createGateway, type GatewayApp } from '../../src/gateway/http.ts';
import { TENANT_A, TENANT_B } from '../support/db.ts';
import { jwt, JWT_SECRET, setUp, type Setup, postQuery } from './helpers.ts';

test('token bucket: burst, then the rate, with Retry-After', () => {
  let now = 0;
  const limiter = new TenantLimiter({ ratePerSecond: 2, burst: 3, maxConcurrent: 100 }, () => now);
  for (let i = 0; i < 3; i++) {
    const a = limiter.acquire('t');
    assert.ok(a.ok);
    a.release();
  }
  const refused = limiter.acquire('t');
  assert.deepEqual(refused, { ok: false, reason: 'rate', retryAfterSeconds: 1 });
  assert.ok(limiter.acquire('other').ok, 'another tenant has its own bucket');
  now += 500;
  const again = limiter.acquire('t');
  assert.ok(again.ok);
});

test('concurrency cap: refused while in flight, free after release, no token spent', () => {
  const limiter = new TenantLimiter({ ratePerSecond: 1, burst: 2, maxConcurrent: 1 }, () => 0);
  const first = limiter.acquire('t');
  assert.ok(first.ok);
  const second = limiter.acquire('t');
  assert.equal(second.ok, false);
  assert.equal(!second.ok && second.reason, 'concurrency');
  first.release();
  first.release();
  assert.ok(limiter.acquire('t').ok, 'a refused request cost no token; a double release frees once');
});

let s: Setup;
let app: GatewayApp;
before(async () => {
  s = await setUp();
  app = createGateway({ pool: s.agentPool(), key: s.fence.key, auth: { jwtSecret: JWT_SECRET }, limits: { ratePerSecond: 0.5, burst: 3, maxConcurrent: 1 } });
});
after(async () => {
  await app.close();
  await s.db.drop();
});

const post = async (tenant: string, sql = 'SELECT 1') => postQuery(app, await jwt({ tenant_id: tenant }, { expiresIn: '5m' }), { sql });

test('HTTP: a concurrent statement of the same tenant gets 429, another tenant does not', async () => {
  const slow = post(TENANT_A, 'SELECT count(*) FROM generate_series(1, 3000000)');
  await new Promise((r) => setTimeout(r, 30));
  const [blocked, other] = await Promise.all([post(TENANT_A), post(TENANT_B)]);
  assert.equal(blocked.status, 429);
  assert.equal(blocked.body.error.code, 'TF_RATE_LIMITED');
  assert.equal(blocked.body.error.reason, 'concurrency');
  assert.equal(blocked.retryAfter, '1');
  assert.equal(other.status, 200);
  assert.equal((await slow).status, 200);
});

test('HTTP: past the burst, 429 with Retry-After', async () => {
  const statuses: number[] = [];
  let last;
  for (let i = 0; i < 4; i++) {
    last = await post(TENANT_B);
    statuses.push(last.status);
  }
  assert.ok(statuses.includes(429), statuses.join());
  assert.equal(last!.status, 429);
  assert.equal(last!.body.error.reason, 'rate');
  assert.ok(Number(last!.retryAfter) >= 1);
});

test('the pool share: a tenant with statements running cannot take the connections kept for the others', () => {
  // A pool of 8 keeps 2 connections for tenants with nothing running; no tenant holds more than 6.
  const limiter = new TenantLimiter({ ratePerSecond: 1000, burst: 1000, maxConcurrent: 100, capacity: 8 }, () => 0);
  const held = Array.from({ length: 6 }, () => limiter.acquire('attacker-1'));
  assert.ok(held.every((a) => a.ok));
  assert.deepEqual(limiter.acquire('attacker-1'), { ok: false, reason: 'concurrency', retryAfterSeconds: 1 });
  const second = limiter.acquire('attacker-2');
  assert.ok(second.ok, 'a tenant with nothing running is admitted');
  assert.deepEqual(limiter.acquire('attacker-2'), { ok: false, reason: 'capacity', retryAfterSeconds: 1 });
  assert.ok(limiter.acquire('victim').ok, 'the last connection is still there for another tenant');
  assert.equal(limiter.inFlight, 8);
  for (const a of held) if (a.ok) a.release();
  assert.equal(limiter.inFlight, 2);
  assert.ok(limiter.acquire('attacker-2').ok, 'free again once the busy tenants let go');
});

test('HTTP: three attacker accounts at their cap leave a connection for tenant B, served while their statements run', async () => {
  const pool = s.agentPool({ max: 10 });
  const shared = createGateway({ pool, key: s.fence.key, auth: { jwtSecret: JWT_SECRET }, statementTimeoutMs: 60_000, limits: { ratePerSecond: 1000, burst: 1000 } });
  try {
    const tokens = await Promise.all(['a1', 'a2', 'a3'].map((sub, i) => jwt({ tenant_id: `00000000-0000-0000-0000-00000000000${i + 1}`, sub }, { expiresIn: '5m' })));
    let running = 0;
    const slow = tokens.flatMap((token) => Array.from({ length: 6 }, () => {
      running += 1;
      return postQuery(shared, token, { sql: 'SELECT count(*) FROM generate_series(1, 20000000)' }).finally(() => (running -= 1));
    }));
    await new Promise((r) => setTimeout(r, 300));
    const b = await postQuery(shared, await jwt({ tenant_id: TENANT_B }, { expiresIn: '5m' }), { sql: 'SELECT count(*)::int AS n FROM conversations' });
    const stillRunning = running;
    const replies = await Promise.all(slow);
    assert.equal(b.status, 200, JSON.stringify(b.body));
    assert.deepEqual(b.body.rows, [{ n: 2 }]);
    const admitted = replies.filter((r) => r.status === 200).length;
    assert.ok(stillRunning >= admitted && admitted > 0, `B was answered while ${stillRunning} attacker statements were still running (${admitted} were admitted)`);
    assert.ok(admitted <= 9, `the attackers held ${admitted} of 10 connections`);
    assert.ok(replies.some((r) => r.status === 429 && r.body.error.reason === 'capacity'), replies.map((r) => r.body.error?.reason ?? r.status).join());
  } finally {
    await shared.close();
  }
});
