/**
 * Shared pieces of the audit tests. Every case gets its own database with tenantfence installed
 * and one clean protected table, builds its pitfall on top, and checks that exactly the expected
 * rule fires (on exactly the expected objects), then applies the finding's own remediation and
 * checks the rule is quiet. Setup runs as the superuser; the audit itself only reads the catalog.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';
import { init } from '../../src/cli/commands/init.ts';
import { protect } from '../../src/cli/commands/protect.ts';
import { generateKey, formatSecret } from '../../src/context/token.ts';
import { ident } from '../../src/sql/quote.ts';
import { runAudit, type AuditReport } from '../../src/audit/runner.ts';

/** init, a NOLOGIN owner role, and `items` (PRIMARY KEY (tenant_id, id), uuid ids) protected. */
export async function fencedBase(db: TestDatabase): Promise<void> {
  await init({ db: db.admin, appRole: db.roles.app, agentRole: db.roles.agent, secret: formatSecret(generateKey('t1')) });
  await db.admin.query(`CREATE ROLE ${ident(db.roles.owner)} NOLOGIN`);
  await tenantTable(db, 'items', 'body text');
  await protectTables(db, 'items');
}

/** A tenant table owned by the owner role: tenant_id, a uuid id, the key (tenant_id, id). */
export async function tenantTable(db: TestDatabase, name: string, extra = '', key = 'PRIMARY KEY (tenant_id, id)'): Promise<void> {
  await db.admin.query(`CREATE TABLE ${ident(name)} (
    tenant_id uuid NOT NULL, id uuid NOT NULL DEFAULT gen_random_uuid()${extra ? `, ${extra}` : ''}, ${key})`);
  await db.admin.query(`ALTER TABLE ${ident(name)} OWNER TO ${ident(db.roles.owner)}`);
}

export async function protectTables(db: TestDatabase, ...tables: string[]): Promise<void> {
  await protect({ allowGlobalKeys: true, db: db.admin, tables, appRole: db.roles.app, agentRole: db.roles.agent });
}

export function auditOf(db: TestDatabase, schemas = ['public'], tenantColumn = 'tenant_id'): Promise<AuditReport> {
  return runAudit(db.admin, { schemas, tenantColumn, appRole: db.roles.app, agentRole: db.roles.agent });
}

/** server_version_num: some rules depend on the server (CREATEROLE changed in PostgreSQL 16). */
export async function serverVersion(db: TestDatabase): Promise<number> {
  const { rows } = await db.admin.query<{ v: number }>("SELECT current_setting('server_version_num')::int AS v");
  return rows[0]!.v;
}

export async function withDatabase<T>(fn: (db: TestDatabase) => Promise<T>): Promise<T> {
  const db = await createTestDatabase();
  try {
    return await fn(db);
  } finally {
    await db.drop();
  }
}

/** Replaces tenantfence's policy on `table` with the given CREATE POLICY statements. */
export async function replacePolicy(db: TestDatabase, table: string, ...policies: string[]): Promise<void> {
  await db.admin.query(`DROP POLICY tenantfence_isolation ON ${ident(table)}`);
  for (const p of policies) await db.admin.query(p);
}

export interface RuleCase {
  readonly rule: string;
  /** Tells apart several cases of one rule. */
  readonly name: string;
  setup(db: TestDatabase): Promise<void>;
  /** The objects the rule must report, and nothing else (may depend on the server's version). */
  objects(db: TestDatabase): string[] | Promise<string[]>;
  /** Other rules the pitfall legitimately trips as well (the seed recipe trips several). */
  readonly also?: readonly string[];
}

export function ruleCaseTests(cases: readonly RuleCase[]): void {
  for (const c of cases) {
    test(`${c.rule}: ${c.name}`, () =>
      withDatabase(async (db) => {
        await fencedBase(db);
        await c.setup(db);
        const before = await auditOf(db);
        const hits = before.findings.filter((f) => f.rule === c.rule);
        assert.deepEqual(hits.map((f) => f.object).sort(), [...(await c.objects(db))].sort(), `${c.rule} must fire on exactly these objects`);
        const stray = before.findings.filter((f) => f.rule !== c.rule && !(c.also ?? []).includes(f.rule));
        assert.deepEqual(stray.map((f) => `${f.rule} on ${f.object}: ${f.detail}`), [], 'no other rule may fire');
        for (const f of hits) {
          assert.ok(f.remediation, `${c.rule} gives remediation SQL`);
          await db.admin.query(f.remediation);
        }
        const after = await auditOf(db);
        assert.deepEqual(after.findings.filter((f) => f.rule === c.rule).map((f) => f.detail), [], 'the remediation removes the finding');
      }),
    );
  }
}
