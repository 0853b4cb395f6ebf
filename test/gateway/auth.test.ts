/** JWT verification: HS256 secret, a real JWKS URL on loopback, and options that fail fast. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { createAuthenticator, bearerToken } from '../../src/auth/index.ts';
import { GatewayService } from '../../src/gateway/service.ts';
import { generateKey } from '../../src/context/token.ts';
import { jwt, JWT_SECRET } from './helpers.ts';

const code = (c: string) => (e: unknown) => (e as { code?: string }).code === c;

test('HS256: tenant and principal from the claims; custom tenant claim', async () => {
  const auth = createAuthenticator({ jwtSecret: JWT_SECRET });
  assert.deepEqual(await auth(await jwt({ tenant_id: 'acme', sub: 'bot-1' }, { expiresIn: '1m' })), { tenant: 'acme', subject: 'bot-1' });
  const custom = createAuthenticator({ jwtSecret: JWT_SECRET, tenantClaim: 'org' });
  assert.deepEqual(await custom(await jwt({ org: 'org_42' }, { expiresIn: '1m' })), { tenant: 'org_42', subject: null });
  await assert.rejects(custom(await jwt({ tenant_id: 'acme' }, { expiresIn: '1m' })), code('TF_UNAUTHENTICATED'));
});

test('issuer and audience are enforced when configured', async () => {
  const auth = createAuthenticator({ jwtSecret: JWT_SECRET, issuer: 'https://id.example', audience: 'tenantfence' });
  await assert.rejects(auth(await jwt({ tenant_id: 'a' }, { expiresIn: '1m' })), code('TF_UNAUTHENTICATED'));
  const ok = await jwt({ tenant_id: 'a', iss: 'https://id.example', aud: 'tenantfence' }, { expiresIn: '1m' });
  assert.equal((await auth(ok)).tenant, 'a');
});

test('JWKS URL: an ES256 token verifies; an HS256 token and a foreign key do not', async () => {
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  const other = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
  const server = createServer((_req, res) => {
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;
    const auth = createAuthenticator({ jwksUrl: url });
    const sign = (key: CryptoKey) =>
      new SignJWT({ tenant_id: 'acme', sub: 'svc' }).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setExpirationTime('1m').sign(key);
    assert.deepEqual(await auth(await sign(privateKey)), { tenant: 'acme', subject: 'svc' });
    await assert.rejects(auth(await sign(other.privateKey)), code('TF_UNAUTHENTICATED'));
    await assert.rejects(auth(await jwt({ tenant_id: 'acme' }, { expiresIn: '1m' })), code('TF_UNAUTHENTICATED'));
  } finally {
    server.close();
  }
});

test('bearerToken parses only a Bearer header', () => {
  assert.equal(bearerToken('Bearer abc.def.ghi'), 'abc.def.ghi');
  assert.equal(bearerToken('bearer abc'), 'abc');
  assert.equal(bearerToken('Basic abc'), undefined);
  assert.equal(bearerToken(undefined), undefined);
  assert.equal(bearerToken('Bearer a b'), undefined);
});

test('bad options fail at construction, before any request', () => {
  assert.throws(() => createAuthenticator({}), code('TF_USAGE'));
  assert.throws(() => createAuthenticator({ jwtSecret: 'short' }), code('TF_USAGE'));
  assert.throws(() => createAuthenticator({ jwtSecret: JWT_SECRET, jwksUrl: 'https://x' }), code('TF_USAGE'));
  assert.throws(() => createAuthenticator({ jwksUrl: 'not a url' }), code('TF_USAGE'));
  const key = generateKey('k');
  const base = { key, auth: { jwtSecret: JWT_SECRET }, agentDatabaseUrl: 'postgres://agent@127.0.0.1:1/db' };
  assert.throws(() => new GatewayService({ ...base, agentDatabaseUrl: undefined }), code('TF_USAGE'));
  assert.throws(() => new GatewayService({ ...base, agentDatabaseUrl: 'mysql://x' }), code('TF_CONNECTION'));
  assert.throws(() => new GatewayService({ ...base, maxRows: 0 }), code('TF_USAGE'));
  assert.throws(() => new GatewayService({ ...base, mode: 'admin' as 'read' }), code('TF_USAGE'));
  assert.throws(() => new GatewayService({ ...base, limits: { ratePerSecond: -1 } }), code('TF_USAGE'));
  assert.throws(() => new GatewayService({ ...base, auditStatements: 'none' as 'full' }), code('TF_USAGE'));
});
