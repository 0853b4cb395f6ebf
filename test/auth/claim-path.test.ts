/** Where the tenant claim is read: a name verbatim, or a JSON Pointer; never the prototype chain. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseClaimPath, readClaim } from '../../src/auth/claim-path.ts';
import { createAuthenticator } from '../../src/auth/index.ts';
import { jwt, JWT_SECRET } from '../gateway/helpers.ts';

test('a name is one step, dots and slashes included; a pointer is split and unescaped', () => {
  assert.deepEqual(parseClaimPath('tenant_id'), ['tenant_id']);
  assert.deepEqual(parseClaimPath('https://example.com/tenant'), ['https://example.com/tenant']);
  assert.deepEqual(parseClaimPath('/app_metadata/tenant_id'), ['app_metadata', 'tenant_id']);
  assert.deepEqual(parseClaimPath('/a~1b/c~0d'), ['a/b', 'c~d']);
  for (const bad of ['', '/', '/a//b', '/a~2', 'a b', 'x'.repeat(129)]) assert.throws(() => parseClaimPath(bad), { code: 'TF_USAGE' }, bad);
});

test('only own properties of objects are read', () => {
  const payload = JSON.parse('{"org": {"id": "o1"}, "list": ["x"], "__proto__": {"polluted": "p"}}');
  assert.equal(readClaim(payload, ['org', 'id']), 'o1');
  assert.equal(readClaim(payload, ['constructor']), undefined);
  assert.equal(readClaim(payload, ['org', 'toString']), undefined);
  assert.equal(readClaim(payload, ['list', '0']), undefined);
  assert.equal(readClaim(payload, ['missing', 'id']), undefined);
});

test('a namespaced claim and a nested claim name the tenant', async () => {
  const namespaced = createAuthenticator({ jwtSecret: JWT_SECRET, tenantClaim: 'https://example.com/tenant' });
  assert.equal((await namespaced(await jwt({ 'https://example.com/tenant': 'acme' }, { expiresIn: '1m' }))).tenant, 'acme');
  const nested = createAuthenticator({ jwtSecret: JWT_SECRET, tenantClaim: '/app_metadata/tenant_id' });
  assert.equal((await nested(await jwt({ app_metadata: { tenant_id: 'acme' } }, { expiresIn: '1m' }))).tenant, 'acme');
  // A user-editable sibling object does not stand in for the configured one.
  await assert.rejects(nested(await jwt({ user_metadata: { tenant_id: 'acme' } }, { expiresIn: '1m' })), { code: 'TF_UNAUTHENTICATED' });
});
