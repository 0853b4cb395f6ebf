/**
 * The relation allowlist against real PostgreSQL (issue 10, item 2): the agent names only relations
 * tenantfence protects or the operator exposes; an extension-style view in `public`, a table
 * nobody protected, and types built on xid are refused, and /v1/schema lists only what is allowed.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createGateway, type GatewayApp } from '../../src/gateway/http.ts';
import { isTenantfenceError } from '../../src/errors.ts';
import { ident } from '../../src/sql/quote.ts';
import { TENANT_A, TENANT_B } from '../support/db.ts';
import { jwt, JWT_SECRET, postQuery, setUp, type Setup } from './helpers.ts';

let s: Setup;
let token: string;
const gateways: GatewayApp[] = [];
const limits = { burst: 1000, ratePerSecond: 1000 };

before(async () => {
  s = await setUp();
  const agent = ident(s.db.roles.agent);
  // What pg_stat_statements installs in public: a view over every session's statements.
  await s.db.admin.query(`CREATE VIEW public.pg_stat_statements AS SELECT query FROM pg_catalog.pg_stat_activity`);
  await s.db.admin.query(`GRANT SELECT ON public.pg_stat_statements TO PUBLIC`);
  // A table someone forgot to protect, readable by the agent.
  await s.db.admin.query(`CREATE TABLE public.notes (tenant_id uuid, body text)`);
  await s.db.admin.query(`INSERT INTO public.notes VALUES ($1, 'note of B: marker-notes-b')`, [TENANT_B]);
  await s.db.admin.query(`GRANT SELECT ON public.notes TO ${agent}`);
  // Types that carry a transaction id.
  await s.db.admin.query(`CREATE TYPE public.txinfo AS (x xid)`);
  await s.db.admin.query(`CREATE DOMAIN public.myxid AS xid`);
  await s.db.admin.query(`CREATE TYPE public.wrapper AS (t public.txinfo)`);
  token = await jwt({ tenant_id: TENANT_A, sub: 'agent-a' }, { expiresIn: '5m' });
});
after(async () => {
  await Promise.all(gateways.map((g) => g.close()));
  await s.db.drop();
});

function gateway(options: { exposeRelations?: string[] } = {}): GatewayApp {
  const app = createGateway({ pool: s.agentPool(), key: s.fence.key, auth: { jwtSecret: JWT_SECRET }, limits, ...options });
  gateways.push(app);
  return app;
}

test('only protected relations are readable and listed; the view in public and the forgotten table are refused', async () => {
  const app = gateway();
  for (const sql of ['SELECT query FROM public.pg_stat_statements', 'SELECT * FROM notes', 'SELECT * FROM public.notes', 'SELECT c.id FROM conversations c JOIN notes n ON true']) {
    const r = await postQuery(app, token, { sql });
    assert.equal(r.status, 422, `${sql}: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.error.reason, 'relation');
    assert.ok(!JSON.stringify(r.body).includes('marker-notes-b'));
  }
  const ok = await postQuery(app, token, { sql: 'SELECT count(*)::int AS n FROM conversations' });
  assert.deepEqual(ok.body.rows, [{ n: 3 }]);
  const schema = (await (await app.request('/v1/schema', { headers: { Authorization: `Bearer ${token}` } })).json()) as any;
  assert.deepEqual(schema.tables.map((t: any) => `${t.schema}.${t.name}`), ['public.conversations']);
});

test('an exposed relation is readable and listed; exposing a catalog or a missing table fails at start', async () => {
  const app = gateway({ exposeRelations: ['public.notes'] });
  const r = await postQuery(app, token, { sql: 'SELECT body FROM notes' });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.rowCount, 1, 'exposed means readable as it is: notes has no RLS');
  const schema = (await (await app.request('/v1/schema', { headers: { Authorization: `Bearer ${token}` } })).json()) as any;
  assert.deepEqual(schema.tables.map((t: any) => `${t.schema}.${t.name}`), ['public.conversations', 'public.notes']);
  for (const bad of ['pg_catalog.pg_class', 'public.nowhere', 'information_schema.tables']) {
    const g = gateway({ exposeRelations: [bad] });
    await assert.rejects(g.service.start(), (e: unknown) => isTenantfenceError(e) && e.code === 'TF_USAGE' && /Cannot expose/.test(e.message));
  }
});

test('types built on xid or on catalog row types are refused before they run', async () => {
  const app = gateway();
  for (const sql of [
    "SELECT age(('(3)'::txinfo).x)::text AS a",
    "SELECT age('3'::myxid)::text AS a",
    "SELECT (('(\"(3)\")'::public.wrapper).t).x::text AS a",
    "SELECT (NULL::pg_class).relfrozenxid::text AS a",
  ]) {
    const r = await postQuery(app, token, { sql });
    assert.equal(r.status, 422, `${sql}: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.error.reason, 'other');
  }
});
