/**
 * A short seeded fuzz of the firewall against real PostgreSQL (issue 10, item 6): no crash, no
 * hang, and no accepted statement, run as the agent for tenant A and rolled back, shows any of
 * tenant B's markers. The long run is `scripts/fuzz-firewall.ts`.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { loadFirewall } from '../../src/gateway/firewall.ts';
import { firewallRelations, loadServerProfile } from '../../src/gateway/server-profile.ts';
import { createFixture, type Fixture } from '../../src/redteam/fixture.ts';
import { fuzz, generate, mutate, prng, SEEDS } from '../../src/redteam/fuzz.ts';
import { serverUrl } from '../support/db.ts';

let fixture: Fixture;
before(async () => {
  await loadFirewall();
  fixture = await createFixture(serverUrl());
});
after(() => fixture.drop());

test('the generators are deterministic per seed', () => {
  const run = (seed: number) => { const r = prng(seed); return [generate(r), mutate(r, SEEDS[0]!, SEEDS), generate(r)]; };
  assert.deepEqual(run(7), run(7));
  assert.notDeepEqual(run(7), run(8));
});

test('3,000 seeded inputs: no crash, no hang, no marker of tenant B in anything an accepted statement returns', async (t) => {
  const before = await fixture.checksumB();
  const agent = fixture.pool(fixture.roles.agent, { max: 1 });
  const profile = await loadServerProfile(agent);
  const relations = firewallRelations(profile);
  const stats = await fuzz({
    seed: 20261201,
    inputs: 3000,
    fixture,
    agent,
    firewall: { read: { mode: 'read', server: profile, relations }, write: { mode: 'write', server: profile, relations } },
    searchPath: profile.searchPath,
  });
  t.diagnostic(JSON.stringify({ ...stats, findings: stats.findings.length }));
  assert.deepEqual(stats.findings, []);
  assert.equal(stats.crashes + stats.hangs + stats.leaks, 0);
  assert.ok(stats.accepted >= 100, `only ${stats.accepted} accepted: the run would prove little`);
  assert.ok(stats.reloading < 10, `${stats.reloading} refusals while the parser reloaded`);
  assert.equal(await fixture.checksumB(), before);
});

test('the leak check sees a leak: the same run as a superuser (no RLS) finds B\'s markers', async () => {
  const superuser = new pg.Pool({ connectionString: fixture.url, max: 1 });
  try {
    const profile = await loadServerProfile(fixture.pool(fixture.roles.agent, { max: 1 }));
    const relations = firewallRelations(profile);
    const stats = await fuzz({
      seed: 20261201,
      inputs: 300,
      fixture,
      agent: superuser,
      firewall: { read: { mode: 'read', server: profile, relations }, write: { mode: 'write', server: profile, relations } },
      searchPath: profile.searchPath,
    });
    assert.ok(stats.leaks > 0, JSON.stringify({ ...stats, findings: stats.findings.length }));
    assert.ok(stats.findings.every((f) => f.kind === 'leak'));
  } finally {
    await superuser.end();
  }
});
