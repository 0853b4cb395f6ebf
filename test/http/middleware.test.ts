/**
 * The three HTTP middlewares, one suite looped over frameworks (Kysely's habit): each app is real
 * (Hono in-process through app.request(), Express and Fastify on an ephemeral port), and what the
 * handler sees is read back from its response.
 */
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Hono } from 'hono';
import express from 'express';
import Fastify from 'fastify';
import { requireTenant as honoTenant, type TenantEnv } from '../../src/http/hono.ts';
import { requireTenant as expressTenant } from '../../src/http/express.ts';
import { requireTenant as fastifyTenant } from '../../src/http/fastify.ts';
import { getTenant } from '../../src/context/storage.ts';
import type { RequestAuthOptions } from '../../src/auth/index.ts';
import { jwt, JWT_SECRET } from '../gateway/helpers.ts';

type Fetch = (path: string, init?: RequestInit) => Promise<Response>;
interface Framework {
  readonly name: string;
  /** An app with GET /whoami and POST /echo behind the middleware. */
  start(options: RequestAuthOptions): Promise<{ fetch: Fetch; close(): Promise<void> }>;
}

/** What every handler answers: the tenant before and after an await, and what the middleware attached. */
async function whoami(subject: string | null | undefined): Promise<Record<string, unknown>> {
  const before = getTenant();
  await sleep(Math.random() * 5);
  return { before, after: getTenant(), subject };
}

const frameworks: Framework[] = [
  {
    name: 'hono',
    async start(options) {
      const app = new Hono<TenantEnv>();
      app.use('/*', honoTenant(options));
      app.get('/whoami', async (c) => c.json(await whoami(c.get('tenantfence').subject)));
      app.post('/echo', async (c) => {
        const body = await c.req.json();
        return c.json({ tenant: getTenant(), body });
      });
      return { fetch: async (path, init) => app.request(path, init), close: async () => undefined };
    },
  },
  {
    name: 'express',
    async start(options) {
      const app = express();
      // The body parser after the middleware: the order where a body arriving later loses the context.
      app.use(expressTenant(options));
      app.use(express.json());
      app.get('/whoami', async (_req, res) => {
        res.json(await whoami((res.locals.tenantfence as { subject: string | null }).subject));
      });
      app.post('/echo', (req, res) => {
        res.json({ tenant: getTenant(), body: req.body });
      });
      return listen((port) => new Promise((resolve) => {
        const server = app.listen(port, '127.0.0.1', () => resolve({ port: (server.address() as AddressInfo).port, close: () => new Promise<void>((r) => server.close(() => r())) }));
      }));
    },
  },
  {
    name: 'fastify',
    async start(options) {
      const app = Fastify();
      await app.register(fastifyTenant(options));
      app.addHook('preHandler', async (request) => {
        // A user's own async hook after body parsing still sees the tenant.
        if (getTenant() !== request.tenantfence?.tenant) throw new Error('context lost before the handler');
      });
      app.get('/whoami', async (request) => whoami(request.tenantfence?.subject));
      app.post('/echo', async (request) => ({ tenant: getTenant(), body: request.body }));
      await app.listen({ port: 0, host: '127.0.0.1' });
      return listen(async () => ({ port: (app.server.address() as AddressInfo).port, close: () => app.close() }));
    },
  },
];

async function listen(start: (port: number) => Promise<{ port: number; close(): Promise<unknown> }>) {
  const server = await start(0);
  return {
    fetch: (path: string, init?: RequestInit) => fetch(`http://127.0.0.1:${server.port}${path}`, init),
    close: async () => void (await server.close()),
  };
}

const bearer = (token: string) => ({ headers: { Authorization: `Bearer ${token}` } });
const closers: Array<() => Promise<void>> = [];
after(async () => {
  for (const close of closers) await close();
});

for (const framework of frameworks) {
  describe(framework.name, () => {
    const start = async (options: RequestAuthOptions) => {
      const app = await framework.start(options);
      closers.push(app.close);
      return app.fetch;
    };

    test('a valid JWT runs the handler inside its tenant; the principal is attached', async () => {
      const fetch = await start({ jwtSecret: JWT_SECRET });
      const res = await fetch('/whoami', bearer(await jwt({ tenant_id: 'acme', sub: 'user-1' }, { expiresIn: '1m' })));
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), { before: 'acme', after: 'acme', subject: 'user-1' });
    });

    test('the tenant survives body parsing', async () => {
      const fetch = await start({ jwtSecret: JWT_SECRET });
      const token = await jwt({ tenant_id: 'acme' }, { expiresIn: '1m' });
      const res = await fetch('/echo', { method: 'POST', headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ n: 1 }) });
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), { tenant: 'acme', body: { n: 1 } });
    });

    test('the tenant survives a body that arrives in pieces after the headers', async () => {
      const fetch = await start({ jwtSecret: JWT_SECRET });
      const token = await jwt({ tenant_id: 'acme' }, { expiresIn: '1m' });
      const parts = ['{"n":', ' 2}'];
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          await sleep(30);
          const part = parts.shift();
          if (part === undefined) controller.close();
          else controller.enqueue(new TextEncoder().encode(part));
        },
      });
      const init = { method: 'POST', headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' }, body, duplex: 'half' };
      const res = await fetch('/echo', init as RequestInit);
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), { tenant: 'acme', body: { n: 2 } });
    });

    test('missing, malformed, wrongly signed, expired and tenant-less tokens get 401 JSON and no handler', async () => {
      const fetch = await start({ jwtSecret: JWT_SECRET });
      const cases: Array<[string, RequestInit | undefined]> = [
        ['missing', undefined],
        ['not bearer', { headers: { Authorization: 'Basic YTpi' } }],
        ['garbage', bearer('abc.def.ghi')],
        ['foreign key', bearer(await jwt({ tenant_id: 'acme' }, { expiresIn: '1m', secret: 'another-secret-of-at-least-32-bytes!!' }))],
        ['expired', bearer(await jwt({ tenant_id: 'acme' }, { expiresIn: Math.floor(Date.now() / 1000) - 60 }))],
        ['no exp', bearer(await jwt({ tenant_id: 'acme' }))],
        ['no tenant', bearer(await jwt({ sub: 'x' }, { expiresIn: '1m' }))],
        ['bad tenant', bearer(await jwt({ tenant_id: "a' OR 1=1" }, { expiresIn: '1m' }))],
      ];
      for (const [name, init] of cases) {
        const res = await fetch('/whoami', init);
        assert.equal(res.status, 401, name);
        assert.match(res.headers.get('content-type') ?? '', /application\/json/, name);
        assert.equal(res.headers.get('www-authenticate'), 'Bearer', name);
        const body = (await res.json()) as { error: { code: string; message: string } };
        assert.equal(body.error.code, 'TF_UNAUTHENTICATED', name);
        assert.ok(!('before' in body), name);
      }
    });

    test('clock skew: a token expired within the tolerance passes, beyond it fails', async () => {
      const fetch = await start({ jwtSecret: JWT_SECRET, clockToleranceSeconds: 30 });
      const now = Math.floor(Date.now() / 1000);
      assert.equal((await fetch('/whoami', bearer(await jwt({ tenant_id: 'acme' }, { expiresIn: now - 10 })))).status, 200);
      assert.equal((await fetch('/whoami', bearer(await jwt({ tenant_id: 'acme' }, { expiresIn: now - 60 })))).status, 401);
    });

    test('issuer, audience and a nested tenant claim (JSON Pointer)', async () => {
      const fetch = await start({ jwtSecret: JWT_SECRET, issuer: 'https://id.example', audience: 'app', tenantClaim: '/app_metadata/tenant_id' });
      const good = { iss: 'https://id.example', aud: 'app', app_metadata: { tenant_id: 'org_7' } };
      assert.deepEqual(await (await fetch('/whoami', bearer(await jwt(good, { expiresIn: '1m' })))).json(), { before: 'org_7', after: 'org_7', subject: null });
      for (const claims of [{ ...good, iss: 'https://evil.example' }, { ...good, aud: 'other' }, { ...good, app_metadata: undefined, tenant_id: 'org_7' }]) {
        assert.equal((await fetch('/whoami', bearer(await jwt(claims, { expiresIn: '1m' })))).status, 401);
      }
    });

    test('the proxy header is ignored by default and trusted only when opted in', async () => {
      const jwtOnly = await start({ jwtSecret: JWT_SECRET });
      assert.equal((await jwtOnly('/whoami', { headers: { 'X-Tenant-Id': 'acme' } })).status, 401);

      const proxied = await start({ trustProxyHeader: 'X-Tenant-Id' });
      assert.deepEqual(await (await proxied('/whoami', { headers: { 'X-Tenant-Id': 'acme' } })).json(), { before: 'acme', after: 'acme', subject: null });
      assert.equal((await proxied('/whoami')).status, 401);
      assert.equal((await proxied('/whoami', { headers: { 'X-Tenant-Id': 'a b' } })).status, 401);
      // In proxy mode a JWT is not a way in either.
      assert.equal((await proxied('/whoami', bearer(await jwt({ tenant_id: 'acme' }, { expiresIn: '1m' })))).status, 401);
    });

    test('250 interleaved requests over 25 tenants each see only their own tenant', async () => {
      const fetch = await start({ jwtSecret: JWT_SECRET });
      const tokens = await Promise.all(Array.from({ length: 25 }, (_, i) => jwt({ tenant_id: `t${i}`, sub: `u${i}` }, { expiresIn: '1m' })));
      const replies = await Promise.all(
        Array.from({ length: 250 }, async (_, i) => {
          const res = await fetch('/whoami', bearer(tokens[i % 25]!));
          return { i, body: (await res.json()) as Record<string, unknown> };
        }),
      );
      for (const { i, body } of replies) assert.deepEqual(body, { before: `t${i % 25}`, after: `t${i % 25}`, subject: `u${i % 25}` });
    });
  });
}

test('bad options fail when the middleware is made, for every framework', () => {
  for (const make of [honoTenant, expressTenant, fastifyTenant]) {
    const usage = (e: unknown) => (e as { code?: string }).code === 'TF_USAGE';
    assert.throws(() => make({}), usage);
    assert.throws(() => make({ jwtSecret: 'short' }), usage);
    assert.throws(() => make({ jwtSecret: JWT_SECRET, trustProxyHeader: 'x-tenant-id' }), usage);
    assert.throws(() => make({ trustProxyHeader: 'authorization' }), usage);
    assert.throws(() => make({ trustProxyHeader: 'x tenant' }), usage);
    assert.throws(() => make({ jwtSecret: JWT_SECRET, tenantClaim: '/a//b' }), usage);
  }
});
