/**
 * Every subpath in package.json's exports loads, from the source its dist file is built from, and
 * exports what its docs promise; every optional integration's package is an optional peer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  exports: Record<string, { default: string; types: string }>;
  peerDependencies: Record<string, string>;
  peerDependenciesMeta: Record<string, { optional?: boolean }>;
};

const promised: Record<string, string[]> = {
  './pg': ['withTenant', 'tenantQuery', 'rolePool'],
  './postgres-js': ['withTenant'],
  './drizzle': ['withTenant'],
  './kysely': ['withTenant'],
  './prisma': ['withTenant', 'fencedAdapter', 'tenantExtension'],
  './hono': ['requireTenant'],
  './express': ['requireTenant'],
  './fastify': ['requireTenant'],
};

test('each export loads and has its functions', async () => {
  for (const [subpath, target] of Object.entries(pkg.exports)) {
    assert.match(target.default, /^\.\/dist\/.+\.js$/, subpath);
    assert.equal(target.types, target.default.replace(/\.js$/, '.d.ts'), subpath);
    const source = new URL(`../../${target.default.replace(/^\.\/dist\//, 'src/').replace(/\.js$/, '.ts')}`, import.meta.url);
    const module = (await import(source.href)) as Record<string, unknown>;
    assert.ok(Object.keys(module).length > 0, subpath);
    for (const name of promised[subpath] ?? []) assert.equal(typeof module[name], 'function', `${subpath} exports ${name}`);
  }
  for (const subpath of Object.keys(promised)) assert.ok(pkg.exports[subpath], `${subpath} is exported`);
});

test('drivers, ORMs and frameworks are optional peer dependencies', () => {
  for (const name of ['postgres', 'drizzle-orm', 'kysely', '@prisma/client', '@prisma/adapter-pg', 'express', 'fastify']) {
    assert.ok(pkg.peerDependencies[name], `${name} is a peer dependency`);
    assert.equal(pkg.peerDependenciesMeta[name]?.optional, true, `${name} is optional`);
  }
});
