/**
 * One renderer for the tenant policy (issue 9, item 4), across the tenant column types people use:
 * `protect` then `audit` is clean, and on broken tables every remediation the audit suggests,
 * applied as printed, leaves the audit clean and isolation holding on the data as the app role.
 * The tenant `acmecorp-evil` is the truncation probe: cast to varchar(8) it would read `acmecorp`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withTenant } from '../../src/adapters/pg.ts';
import { init } from '../../src/cli/commands/init.ts';
import { protect } from '../../src/cli/commands/protect.ts';
import { formatSecret, generateKey } from '../../src/context/token.ts';
import { ident, literal } from '../../src/sql/quote.ts';
import { tenantPolicyText } from '../../src/sql/policy.ts';
import { TENANT_A, TENANT_B } from '../support/db.ts';
import { auditOf, withDatabase } from './support.ts';

interface ColumnType {
  readonly type: string;
  /** Two tenants with rows, and a third without, that must read nothing. */
  readonly tenants: readonly [string, string, string];
}

const SLUGS = ['acmecorp', 'globex', 'acmecorp-evil'] as const;
const TYPES: readonly ColumnType[] = [
  { type: 'uuid', tenants: [TENANT_A, TENANT_B, '33333333-3333-3333-3333-333333333333'] },
  { type: 'bigint', tenants: ['1', '2', '12'] },
  { type: 'text', tenants: SLUGS },
  { type: 'varchar(8)', tenants: SLUGS },
  { type: 'char(8)', tenants: SLUGS },
  { type: 'numeric', tenants: ['1', '2', '10'] },
  { type: 'tenant_code', tenants: SLUGS }, // a domain over varchar(8)
];

/** Broken shapes a real database has; each name is a table suffix. */
const BROKEN: Record<string, (table: string, type: string) => string> = {
  // row level security never switched on
  off: () => '',
  // the seed recipe: a GUC policy with a bypass switch, no WITH CHECK
  bypass: (t) => `ALTER TABLE ${t} ENABLE ROW LEVEL SECURITY; ALTER TABLE ${t} FORCE ROW LEVEL SECURITY;
    CREATE POLICY legacy ON ${t} USING (tenant_id::text = current_setting('app.tenant_id', true) OR current_setting('app.bypass_rls', true) = 'on')`,
  // on and forced, policy forgotten
  nopolicy: (t) => `ALTER TABLE ${t} ENABLE ROW LEVEL SECURITY; ALTER TABLE ${t} FORCE ROW LEVEL SECURITY`,
  // a verified pin without WITH CHECK
  nocheck: (t, type) => `ALTER TABLE ${t} ENABLE ROW LEVEL SECURITY; ALTER TABLE ${t} FORCE ROW LEVEL SECURITY;
    CREATE POLICY pinned ON ${t} USING (tenant_id = (SELECT tenantfence.current_tenant()::${baseOf(type)}))`,
  // a policy that admits every row, beside nothing else
  open: (t) => `ALTER TABLE ${t} ENABLE ROW LEVEL SECURITY; ALTER TABLE ${t} FORCE ROW LEVEL SECURITY;
    CREATE POLICY everyone ON ${t} USING (true) WITH CHECK (true)`,
};

function baseOf(type: string): string {
  return type === 'tenant_code' ? 'varchar' : type.replace(/\(\d+\)$/, '').replace(/^char$/, 'bpchar');
}

test('every tenant column type: protect audits clean; every remediation on a broken table audits clean and isolates', () =>
  withDatabase(async (db) => {
    const key = generateKey('t1');
    await init({ db: db.admin, appRole: db.roles.app, agentRole: db.roles.agent, secret: formatSecret(key) });
    await db.admin.query(`ALTER ROLE ${ident(db.roles.app)} PASSWORD ${literal(db.password)};
      CREATE ROLE ${ident(db.roles.owner)} NOLOGIN;
      CREATE DOMAIN tenant_code AS varchar(8)`);
    const tables: Array<{ table: string; column: ColumnType }> = [];
    const create = async (table: string, column: ColumnType) => {
      await db.admin.query(`CREATE TABLE ${table} (tenant_id ${column.type} NOT NULL, id uuid NOT NULL DEFAULT gen_random_uuid(), body text,
          PRIMARY KEY (tenant_id, id));
        ALTER TABLE ${table} OWNER TO ${ident(db.roles.owner)};
        GRANT SELECT, INSERT, UPDATE, DELETE ON ${table} TO ${ident(db.roles.app)}`);
      const [a, b] = column.tenants;
      await db.admin.query(`INSERT INTO ${table} (tenant_id, body) VALUES ($1, 'a1'), ($1, 'a2'), ($2, 'b1')`, [a, b]);
      tables.push({ table, column });
    };

    const protectedTables: string[] = [];
    for (const [i, column] of TYPES.entries()) {
      await create(`p${i}`, column);
      protectedTables.push(`p${i}`);
      for (const [shape, ddl] of Object.entries(BROKEN)) {
        await create(`b${i}_${shape}`, column);
        const sql = ddl(`b${i}_${shape}`, column.type);
        if (sql) await db.admin.query(sql);
      }
    }
    await protect({ allowGlobalKeys: true, db: db.admin, tables: protectedTables, appRole: db.roles.app, agentRole: db.roles.agent });

    const before = await auditOf(db);
    assert.deepEqual(before.findings.filter((f) => /^public\.p\d$/.test(f.object)).map((f) => `${f.rule} ${f.object}`), [],
      'protected tables audit clean');
    for (const [shape] of Object.entries(BROKEN)) {
      for (const i of TYPES.keys()) {
        assert.ok(before.findings.some((f) => f.object === `public.b${i}_${shape}`), `b${i}_${shape} is reported`);
      }
    }
    // The policy in a remediation is the renderer's, for the column's type (no varchar(8) cast).
    const offFix = before.findings.find((f) => f.rule === 'rls-disabled' && f.object === 'public.b3_off')!;
    assert.ok(offFix.remediation!.includes(tenantPolicyText({ schema: 'public', name: 'b3_off', tenantColumn: 'tenant_id', castType: 'character varying' })),
      offFix.remediation!);
    assert.doesNotMatch(before.findings.map((f) => f.remediation ?? '').join('\n'), /::(character varying|bpchar|character|varchar|tenant_code)\(\d+\)|::tenant_code\b/);

    // Apply each distinct fix once, in report order, as an operator pasting them would.
    const fixes = [...new Set(before.findings.map((f) => f.remediation).filter((r): r is string => Boolean(r)))];
    for (const fix of fixes) await db.admin.query(fix);
    const after = await auditOf(db);
    assert.deepEqual(after.findings.map((f) => `${f.level} ${f.rule} ${f.object}: ${f.detail}`), [], 'the audit is clean after its own fixes');

    // Isolation on the data, as the app role, with the legacy switches flipped.
    const pool = db.pool(db.roles.app);
    for (const { table, column } of tables) {
      const [a, b, stranger] = column.tenants;
      const read = (tenant: string) => withTenant(pool, tenant, async (c) => {
        await c.query(`SELECT set_config('app.bypass_rls', 'on', true), set_config('app.tenant_id', $1, true)`, [b]);
        return (await c.query<{ body: string }>(`SELECT body FROM ${table} ORDER BY body`)).rows.map((r) => r.body);
      }, { key });
      assert.deepEqual(await read(a), ['a1', 'a2'], `${table} (${column.type}) tenant ${a}`);
      assert.deepEqual(await read(b), ['b1'], `${table} (${column.type}) tenant ${b}`);
      assert.deepEqual(await read(stranger), [], `${table} (${column.type}) tenant ${stranger} reads nothing`);
      await assert.rejects(
        withTenant(pool, a, (c) => c.query(`INSERT INTO ${table} (tenant_id, body) VALUES ($1, 'planted')`, [b]), { key }),
        /row-level security/, `${table}: tenant ${a} cannot write as ${b}`);
    }
    assert.equal((await db.admin.query(`SELECT count(*)::int AS n FROM b0_bypass WHERE body = 'planted'`)).rows[0].n, 0);
  }),
);
