import { test } from 'node:test';
import assert from 'node:assert/strict';
import { installFence } from '../support/db.ts';
import { ADMIN_ROLE, OWNER_ROLE, POLICY_NAME, SCHEMA } from '../../src/sql/roles.ts';
import pg from 'pg';
import { runAudit, withPrelude } from '../../src/audit/runner.ts';
import { auditOf, fencedBase, protectTables, withDatabase } from './support.ts';
import { ident } from '../../src/sql/quote.ts';

test('init + protect audits clean: no finding at any level, every table on the map fenced', () =>
  withDatabase(async (db) => {
    await fencedBase(db);
    // The tenant column in the types protect supports: uuid (items), varchar and a domain over text
    // (each a binary relabel to text in the policy, which must not read as a cast), text, bigint.
    await db.admin.query('CREATE DOMAIN tenant_key AS text');
    for (const [name, type] of [['notes', 'varchar(64)'], ['labels', 'text'], ['counters', 'bigint'], ['tags', 'tenant_key']] as const) {
      await db.admin.query(`CREATE TABLE ${name} (tenant_id ${type} NOT NULL, id uuid NOT NULL DEFAULT gen_random_uuid(), PRIMARY KEY (tenant_id, id))`);
      await db.admin.query(`ALTER TABLE ${name} OWNER TO ${ident(db.roles.owner)}`);
    }
    await protectTables(db, 'notes', 'labels', 'counters', 'tags');
    const report = await auditOf(db);
    assert.deepEqual(report.findings.map((f) => `${f.level} ${f.rule} ${f.object}: ${f.detail}`), []);
    assert.deepEqual(report.notes, []);
    assert.deepEqual(report.tables.map((t) => [t.object, t.rlsEnabled, t.rlsForced, t.tenantIndex, t.fenced]), [
      ['public.counters', true, true, true, true],
      ['public.items', true, true, true, true],
      ['public.labels', true, true, true, true],
      ['public.notes', true, true, true, true],
      ['public.tags', true, true, true, true],
    ]);
  }),
);

test("the seed's conversations table: its bigserial key is an existence oracle, its sequence a volume leak", () =>
  withDatabase(async (db) => {
    await installFence(db);
    const report = await auditOf(db);
    assert.deepEqual(report.findings.map((f) => [f.level, f.rule, f.object]), [
      ['error', 'global-unique-on-tenant-table', 'public.conversations'],
      ['info', 'sequence-shared-across-tenants', 'public.conversations'],
    ]);
  }),
);

test("the prelude's tenantfence names are the ones init and protect install", () =>
  withDatabase(async (db) => {
    await fencedBase(db);
    const { rows } = await db.admin.query(withPrelude('SELECT f.schema, f.owner, f.policy, f.admin_role FROM fence f'), [
      ['public'], 'tenant_id', db.roles.app, db.roles.agent,
    ]);
    assert.deepEqual([rows[0].schema, rows[0].owner, rows[0].policy, rows[0].admin_role], [SCHEMA, OWNER_ROLE, POLICY_NAME, ADMIN_ROLE]);
  }),
);

test('output is deterministic and fingerprints carry no OIDs: the same pitfalls in two databases match', async () => {
  const build = () =>
    withDatabase(async (db) => {
      await fencedBase(db);
      await db.admin.query(`CREATE TABLE open_orders (tenant_id uuid NOT NULL, n bigserial PRIMARY KEY, email text UNIQUE);
        CREATE POLICY p ON items FOR SELECT USING (true)`);
      const first = await auditOf(db);
      const second = await auditOf(db);
      assert.deepEqual(second.findings, first.findings);
      return first.findings.map((f) => `${f.rule} ${f.object} ${f.fingerprint}`);
    });
  const [a, b] = [await build(), await build()];
  assert.ok(a.length >= 5, a.join('\n'));
  assert.deepEqual(a, b);
});

test('an audit that found nothing to check says so', () =>
  withDatabase(async (db) => {
    const report = await auditOf(db, ['public'], 'org_id');
    assert.deepEqual(report.findings, []);
    assert.equal(report.notes.length, 3);
    assert.match(report.notes[0]!, /no table .* has a column "org_id"/i);
    assert.match(report.notes[1]!, /app role .* does not exist/);
  }),
);

test('tables with the tenant column outside --schema are named in a note, not skipped silently', () =>
  withDatabase(async (db) => {
    await fencedBase(db);
    // a table in another schema, and a partition of an audited table placed in another schema
    await db.admin.query(`CREATE SCHEMA crm; CREATE TABLE crm.deals (tenant_id uuid NOT NULL, id uuid PRIMARY KEY);
      CREATE TABLE events (tenant_id uuid NOT NULL, at date NOT NULL) PARTITION BY RANGE (at);
      CREATE SCHEMA parts; CREATE TABLE parts.events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')`);
    const report = await auditOf(db);
    assert.deepEqual(report.notes, [
      '2 table(s) outside --schema have a column "tenant_id" and were not audited: crm.deals, parts.events_2024 (add their schemas to --schema).',
    ]);
    assert.deepEqual((await auditOf(db, ['public', 'crm', 'parts'])).notes, []);
  }),
);

test('runAudit refuses a pool: its BEGIN, SET LOCAL and rules must share one connection', () =>
  withDatabase(async (db) => {
    await fencedBase(db);
    const pool = new pg.Pool({ connectionString: db.url, max: 2 });
    try {
      await assert.rejects(runAudit(pool, { schemas: ['public'], tenantColumn: 'tenant_id', appRole: db.roles.app, agentRole: db.roles.agent }),
        (error: { code?: string; message?: string }) => error.code === 'TF_USAGE' && /pool\.connect\(\)/.test(error.message ?? ''));
      const client = await pool.connect();
      try {
        const report = await runAudit(client, { schemas: ['public'], tenantColumn: 'tenant_id', appRole: db.roles.app, agentRole: db.roles.agent });
        assert.deepEqual(report.findings, []);
      } finally {
        client.release();
      }
    } finally {
      await pool.end();
    }
  }),
);
