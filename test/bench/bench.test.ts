/**
 * `tenantfence bench` as a user runs it, with tiny settings: the shape of its one JSON object, a
 * chart that renders every bar, clean-up, and usage errors. Speed is never asserted here; the
 * numbers only have to be real measurements (positive, finite, min <= median <= max).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { randomBytes } from 'node:crypto';
import { urlForRole } from '../../src/embedded/database.ts';
import { serverUrl } from '../support/db.ts';
import { runCli, spawnCli } from '../support/cli.ts';
import { main } from '../../src/cli/main.ts';
import { balancedOrders } from '../../src/benchmark/measure.ts';

const run = (args: string[], env: Record<string, string | undefined> = {}) => runCli(['bench', ...args], env);

type Spread = { min: number; median: number; max: number };

function assertSpread(value: Spread, where: string): void {
  assert.deepEqual(Object.keys(value).sort(), ['max', 'median', 'min'], where);
  for (const n of [value.min, value.median, value.max]) assert.ok(Number.isFinite(n) && n > 0, `${where}: ${n} is not a positive finite ratio`);
  assert.ok(value.min <= value.median && value.median <= value.max, `${where}: min <= median <= max`);
}

async function leftovers(): Promise<string[]> {
  const client = new pg.Client(serverUrl());
  await client.connect();
  try {
    const { rows } = await client.query<{ name: string }>(
      `SELECT datname AS name FROM pg_database WHERE datname LIKE 'tenantfence\\_bench\\_%'
       UNION ALL SELECT rolname FROM pg_roles WHERE rolname LIKE 'tf\\_bench\\_%'`,
    );
    return rows.map((r) => r.name).sort();
  } finally {
    await client.end();
  }
}

test('bench --json prints one object of positive finite ratios, --svg draws them, and the scratch database is gone', async () => {
  const before = await leftovers();
  const dir = mkdtempSync(join(tmpdir(), 'tf-bench-test-'));
  try {
    const svg = join(dir, 'ratios.svg');
    const r = run(['--rows', '200', '--tenants', '5', '--duration', '0.1', '--repeat', '1', '--json', '--svg', svg], { DATABASE_URL: serverUrl() });
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out.trim().split('\n').length, 1, 'exactly one line of JSON');
    const result = JSON.parse(r.out);
    for (const table of ['ratios', 'p50Ratios'] as const) {
      assert.deepEqual(Object.keys(result[table]), ['Q1', 'Q2', 'Q3', 'Q4']);
      for (const q of ['Q1', 'Q2', 'Q3', 'Q4']) {
        assert.deepEqual(Object.keys(result[table][q]), ['V1/V0', 'V2/V0', 'V3/V0']);
        for (const v of ['V1/V0', 'V2/V0', 'V3/V0']) assertSpread(result[table][q][v], `${table}.${q}.${v}`);
      }
    }
    assert.deepEqual(Object.keys(result.gateway), ['throughput/naive', 'p50/naive']);
    assertSpread(result.gateway['throughput/naive'], 'gateway throughput');
    assertSpread(result.gateway['p50/naive'], 'gateway p50');
    for (const key of ['verifierMicros', 'verifierFirstCallMicros']) assert.ok(Number.isFinite(result[key]) && result[key] > 0, `${key}: ${result[key]}`);
    for (const q of ['Q1', 'Q2', 'Q3', 'Q4']) {
      for (const v of ['V0', 'V1', 'V2', 'V3']) {
        const a = result.absolute[q][v];
        assert.ok(a.throughput > 0 && a.p50Micros > 0 && a.clientCpuMicros >= 0, `absolute ${q} ${v}`);
      }
    }
    assert.equal(result.dataset.rows, 200);
    assert.equal(result.dataset.tenants, 5);
    assert.ok(result.dataset.largestTenantRows > result.dataset.smallestTenantRows, 'tenants are skewed');
    assert.match(result.server.version, /^\d+/);

    const chart = readFileSync(svg, 'utf8');
    assert.match(chart, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"[^>]*>/);
    assert.match(chart, /<\/svg>\n$/);
    // A bar per comparison in each panel: (4 queries x 3 variants + the gateway) x 2 panels.
    assert.equal((chart.match(/<rect [^>]*><title>/g) ?? []).length, 26);
    assert.deepEqual(readdirSync(dir), ['ratios.svg'], 'no temporary file left behind');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.deepEqual(await leftovers(), before, 'the scratch database and roles are dropped');
});

test('bench runs as a managed-style admin (CREATEDB CREATEROLE, no superuser) and cleans up', async () => {
  const admin = `tfbenchadmin_${randomBytes(4).toString('hex')}`;
  const password = randomBytes(12).toString('hex');
  const server = new pg.Client(serverUrl());
  await server.connect();
  const before = await leftovers();
  try {
    await server.query(`CREATE ROLE ${admin} LOGIN CREATEDB CREATEROLE PASSWORD '${password}'`);
    // Other tests made tenantfence_owner already; on PostgreSQL 16+ only its creator's grant lets a
    // new admin act as it, so the test gives it, as that admin would (init names the statement).
    await server.query(`DO $$ BEGIN IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'tenantfence_owner') THEN GRANT tenantfence_owner TO ${admin}; END IF; END $$`);
    const r = run(['--rows', '200', '--tenants', '5', '--duration', '0.05', '--repeat', '1', '--json'], { DATABASE_URL: urlForRole(serverUrl(), admin, password) });
    assert.equal(r.code, 0, r.err);
    assertSpread(JSON.parse(r.out).ratios.Q1['V1/V0'], 'V1 ran under the recipe\'s policy');
    assert.deepEqual(await leftovers(), before, 'the scratch database and roles are dropped');
  } finally {
    await server.query(`DROP ROLE IF EXISTS ${admin}`).catch(() => undefined);
    await server.end();
  }
});

test('Ctrl-C stops a run with TF_INTERRUPTED after dropping the scratch database and roles', async () => {
  const before = await leftovers();
  const running = spawnCli(['bench', '--rows', '20000', '--duration', '1', '--repeat', '5'], { DATABASE_URL: serverUrl() });
  let out = '';
  running.child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  // Interrupt once the scratch database exists (load or measurement under way).
  for (let i = 0; i < 600 && (await leftovers()).length === before.length; i++) await new Promise((r) => setTimeout(r, 100));
  await new Promise((r) => setTimeout(r, 1500));
  running.child.kill('SIGINT');
  const code = await running.exited;
  const err = running.stderr();
  assert.equal(code, 2, err);
  assert.match(err, /^tenantfence: TF_INTERRUPTED: /m);
  assert.doesNotMatch(err, /\n\s+at /, 'no stack trace');
  assert.equal(out, '', 'no partial result');
  assert.deepEqual(await leftovers(), before, 'the scratch database and roles are dropped');
});

test('bench flags are checked before anything connects: one TF_USAGE line, exit 2, no file written', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tf-bench-usage-'));
  try {
    const cases: string[][] = [
      ['--rows', 'many'],
      ['--rows', '10'],
      ['--tenants', '1'],
      ['--rows', '200', '--tenants', '300'],
      ['--duration', '0'],
      ['--duration', '1e3'],
      ['--repeat', '0'],
      ['--repeat', '2.5'],
      ['--svg', join(dir, 'missing', 'chart.svg')],
      ['--svg', dir],
      ['extra'],
      ['--bogus'],
    ];
    for (const args of cases) {
      let out = '';
      let err = '';
      const io = { out: (t: string) => void (out += t), err: (t: string) => void (err += t), isTTY: false };
      // An unreachable server: a flag error must come first, never TF_CONNECTION.
      const code = await main(['bench', ...args, '--database-url', 'postgres://nobody@127.0.0.1:1/none'], io);
      assert.equal(code, 2, `${args.join(' ')}: ${err}`);
      assert.match(err, /^tenantfence: TF_USAGE: /, args.join(' '));
      assert.equal(err.trim().split('\n').length, 1, args.join(' '));
      assert.equal(out, '');
    }
    assert.deepEqual(readdirSync(dir), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bench --help describes every flag', () => {
  const r = run(['--help']);
  assert.equal(r.code, 0);
  assert.match(r.out, /^usage: tenantfence bench/);
  for (const flag of ['--rows', '--tenants', '--duration', '--repeat', '--json', '--svg', '--database-url']) assert.ok(r.out.includes(flag), flag);
});

test('contenders take turns in balanced orders: each follows each other one equally often', () => {
  for (const n of [1, 2, 3, 4, 5]) {
    const orders = balancedOrders(n);
    const follows = new Map<string, number>();
    for (const order of orders) {
      assert.deepEqual([...order].sort(), Array.from({ length: n }, (_, i) => i), `${n}: every order is a permutation`);
      for (let i = 1; i < n; i++) follows.set(`${order[i - 1]}>${order[i]}`, (follows.get(`${order[i - 1]}>${order[i]}`) ?? 0) + 1);
    }
    assert.equal(follows.size, n * (n - 1), `${n}: every ordered pair occurs`);
    assert.equal(new Set(follows.values()).size <= 1, true, `${n}: equally often`);
  }
});
