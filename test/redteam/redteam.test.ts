/**
 * `tenantfence redteam` (issue 10, item 4): the corpus's shape, a subset run through every layer on
 * a real fixture with no leak, the judge seeing leaks when the fence is taken away (a positive
 * control: without it "0 leaked" would prove nothing), and the command's exit codes and JSON.
 * The full corpus is run by the command itself (`tenantfence redteam`).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.ts';
import { loadFirewall } from '../../src/gateway/firewall.ts';
import { loadCorpus, type RedteamCase } from '../../src/redteam/corpus.ts';
import { fixtureTarget } from '../../src/redteam/doors.ts';
import { createFixture, type Fixture } from '../../src/redteam/fixture.ts';
import { runCorpus } from '../../src/redteam/runner.ts';
import { serverUrl } from '../support/db.ts';

const corpus = loadCorpus();
/** Two cases of every category, and every oracle case of the key class. */
const subset: RedteamCase[] = [...new Set(corpus.map((c) => c.category))].flatMap((category) => corpus.filter((c) => c.category === category).slice(0, 2));

let fixture: Fixture;
before(async () => {
  await loadFirewall();
  fixture = await createFixture(serverUrl());
});
after(() => fixture.drop());

test('the corpus: at least 250 cases in at least 20 categories, unique ids, the issue\'s classes', () => {
  assert.ok(corpus.length >= 250, `${corpus.length} cases`);
  const categories = new Set(corpus.map((c) => c.category));
  assert.ok(categories.size >= 20, `${categories.size} categories`);
  assert.equal(new Set(corpus.map((c) => c.id)).size, corpus.length);
  for (const needed of ['other-sessions', 'unprotected-relations', 'transaction-ids', 'memory-amplification', 'starvation', 'squatting', 'oracle-keys', 'audit-tampering', 'role-settings-and-signals', 'large-objects']) {
    assert.ok(categories.has(needed), needed);
  }
  assert.ok(corpus.some((c) => c.oracle) && corpus.some((c) => c.expect === 'refused') && corpus.some((c) => c.tool === 'describe_table'));
});

test('a subset through the gateway, MCP and withTenant: nothing of B read, changed, detected or harmed', async () => {
  const target = await fixtureTarget(fixture);
  try {
    const result = await runCorpus(target, subset);
    const leaks = result.cases.filter((c) => c.verdict === 'leaked');
    assert.deepEqual(leaks, []);
    for (const layer of ['gateway', 'mcp', 'app']) assert.ok(result.cases.some((c) => c.layer === layer && c.verdict === 'held'), layer);
    assert.ok(result.cases.some((c) => c.layer === 'app' && c.verdict === 'not-claimed'), 'classes withTenant does not claim are reported, not run');
    assert.equal(result.total, result.cases.filter((c) => c.verdict !== 'not-claimed').length);
  } finally {
    await target.close();
  }
});

test('the judge sees leaks: with row security off on the table, reads, oracles and writes of B are caught', async () => {
  const target = await fixtureTarget(fixture);
  const superuser = new pg.Client({ connectionString: fixture.url });
  await superuser.connect();
  // The leaks below are real (B's rows get overwritten): keep a copy to put back for later tests.
  await superuser.query('CREATE TEMP TABLE saved AS SELECT * FROM conversations');
  await superuser.query('ALTER TABLE conversations DISABLE ROW LEVEL SECURITY');
  try {
    const pick = (ids: string[]) => corpus.filter((c) => ids.includes(c.id));
    const result = await runCorpus(target, pick(['where-b', 'select-by-id', 'update-b']));
    const leaked = (id: string, layer: string) => result.cases.find((c) => c.id === id && c.layer === layer)?.verdict === 'leaked';
    // The gateway layer runs first; its UPDATE then really overwrote B's markers, so later layers
    // cannot read them any more (a leak taints the fixture for what follows).
    assert.ok(leaked('where-b', 'gateway'), `the marker judge: ${JSON.stringify(result.cases)}`);
    assert.ok(leaked('select-by-id', 'gateway') && leaked('select-by-id', 'mcp') && leaked('select-by-id', 'app'), 'the oracle judge');
    assert.ok(leaked('update-b', 'gateway'), 'the checksum judge');
    assert.match(result.cases.find((c) => c.id === 'select-by-id' && c.layer === 'app')!.evidence, /^undetectable/);
  } finally {
    await superuser.query('ALTER TABLE conversations ENABLE ROW LEVEL SECURITY');
    await superuser.query('DELETE FROM conversations');
    await superuser.query('INSERT INTO conversations SELECT * FROM saved');
    await superuser.end();
    await target.close();
  }
});

test('the command: --json with a corpus file, exit 0 without leaks; clear usage errors', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tf-redteam-'));
  const file = join(dir, 'mini.jsonl');
  writeFileSync(file, subset.slice(0, 4).map((c) => JSON.stringify({ id: c.id, sql: c.sql, layers: c.layers, ...(c.tool !== 'query' ? { tool: c.tool } : {}), ...(c.table ? { table: c.table } : {}) })).join('\n'));
  const out: string[] = [];
  const err: string[] = [];
  const io = { out: (t: string) => void out.push(t), err: (t: string) => void err.push(t), isTTY: false };
  assert.equal(await main(['redteam', '--database-url', serverUrl(), '--corpus', file, '--json'], io), 0, err.join(''));
  const json = JSON.parse(out.join(''));
  assert.deepEqual(Object.keys(json), ['total', 'leaked', 'cases']);
  assert.equal(json.leaked, 0);
  assert.ok(json.total > 0);
  assert.deepEqual(Object.keys(json.cases[0]), ['id', 'layer', 'category', 'verdict', 'evidence']);
  writeFileSync(join(dir, 'bad.jsonl'), '{"id": "x"\n');
  err.length = 0;
  assert.equal(await main(['redteam', '--database-url', serverUrl(), '--corpus', join(dir, 'bad.jsonl')], io), 2);
  assert.match(err.join(''), /^tenantfence: TF_USAGE: Corpus line bad\.jsonl:1 is not valid JSON/);
  err.length = 0;
  assert.equal(await main(['redteam', '--gateway', 'http://127.0.0.1:1'], io), 2);
  assert.match(err.join(''), /TF_USAGE: --gateway needs --token-a and --token-b/);
});

test('--gateway: a running gateway is attacked over HTTP, with B\'s markers read through B\'s token', async () => {
  const { createGateway } = await import('../../src/gateway/http.ts');
  const { listenOn } = await import('../../src/cli/commands/serve.ts');
  const { SignJWT } = await import('jose');
  const { TENANT_A, TENANT_B } = await import('../../src/redteam/fixture.ts');
  const secret = 'a-jwt-secret-of-at-least-thirty-two-bytes';
  const app = createGateway({ pool: fixture.pool(fixture.roles.agent, { max: 10 }), key: fixture.key, auth: { jwtSecret: secret }, mode: 'write', limits: { ratePerSecond: 1000, burst: 1000 } });
  const server = await listenOn(app.fetch, '127.0.0.1', 0, () => app.close());
  const token = (tenant: string) => new SignJWT({ tenant_id: tenant }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('10m').sign(new TextEncoder().encode(secret));
  try {
    const cases = corpus.filter((c) => ['where-b', 'or-true', 'update-b', 'select-by-id', 'stats-1', 'unprotected-1'].includes(c.id));
    const { redteam } = await import('../../src/cli/commands/redteam.ts');
    const dir = mkdtempSync(join(tmpdir(), 'tf-redteam-'));
    const file = join(dir, 'remote.jsonl');
    writeFileSync(file, cases.map((c) => JSON.stringify({ id: c.id, sql: c.sql, ...(c.oracle ? { oracle: true } : {}), ...(c.expect ? { expect: c.expect } : {}) })).join('\n'));
    const result = await redteam({ gateway: { url: server.url, tokenA: await token(TENANT_A), tokenB: await token(TENANT_B) }, corpus: [file] });
    assert.equal(result.total, cases.length);
    assert.deepEqual(result.cases.filter((c) => c.verdict !== 'held'), []);
    assert.ok(result.cases.every((c) => c.layer === 'gateway'));
    // Positive control: the fence broken after the markers were read, the same case leaks.
    const { remoteTarget } = await import('../../src/redteam/doors.ts');
    const target = await remoteTarget(server.url, await token(TENANT_A), await token(TENANT_B));
    assert.ok(fixture.markers.every((m) => target.markers.includes(m)), "B's markers are among the values only B's token reads");
    const superuser = new pg.Client({ connectionString: fixture.url });
    await superuser.connect();
    await superuser.query('ALTER TABLE conversations DISABLE ROW LEVEL SECURITY');
    try {
      const broken = await runCorpus(target, cases.filter((c) => c.id === 'where-b'));
      assert.equal(broken.leaked, 1, JSON.stringify(broken.cases));
    } finally {
      await superuser.query('ALTER TABLE conversations ENABLE ROW LEVEL SECURITY');
      await superuser.end();
    }
  } finally {
    await server.close();
  }
});
