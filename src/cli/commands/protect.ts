import { TenantfenceError, ErrorCodes } from '../../errors.ts';
import { applyInTransaction } from '../../sql/apply.ts';
import { assertInitialised } from '../../sql/keys.ts';
import { inspectTable, planProtect, protectAdvice } from '../../sql/protect.ts';
import { parseTableName } from '../../sql/quote.ts';
import type { Queryable } from '../../sql/queryable.ts';
import { DEFAULT_AGENT_ROLE, DEFAULT_APP_ROLE } from '../../sql/roles.ts';
import { printStatements } from '../../sql/statement.ts';

export interface ProtectCommandOptions {
  readonly db: Queryable;
  readonly tables: readonly string[];
  readonly tenantColumn?: string;
  readonly appRole?: string;
  readonly agentRole?: string;
  readonly agentWrite?: boolean;
  readonly print?: boolean;
}

export interface ProtectResult {
  readonly tables: readonly string[];
  readonly sql: string;
  readonly applied: boolean;
  /** Changes protect does not make itself (keys that reveal other tenants' values). */
  readonly advice: readonly string[];
}

export async function protect(options: ProtectCommandOptions): Promise<ProtectResult> {
  if (options.tables.length === 0) {
    throw new TenantfenceError(ErrorCodes.USAGE, 'Name at least one table: tenantfence protect <table>...');
  }
  const tenantColumn = options.tenantColumn ?? 'tenant_id';
  const roles = { app: options.appRole ?? DEFAULT_APP_ROLE, agent: options.agentRole ?? DEFAULT_AGENT_ROLE };
  await assertInitialised(options.db);
  await assertRolesExist(options.db, [roles.app, roles.agent]);
  const names = [...new Map(options.tables.map((t) => parseTableName(t)).map((t) => [`${t.schema}.${t.name}`, t])).values()];
  const infos = [];
  for (const name of names) infos.push(await inspectTable(options.db, name, tenantColumn, roles));
  const statements = planProtect(infos, { tenantColumn, roles, agentWrite: options.agentWrite ?? false });
  const sql = printStatements(statements);
  const tables = infos.map((t) => `${t.schema}.${t.name}`);
  const advice = protectAdvice(infos, tenantColumn);
  if (options.print) return { tables, sql, applied: false, advice };
  await applyInTransaction(options.db, statements);
  return { tables, sql, applied: true, advice };
}

async function assertRolesExist(db: Queryable, roles: string[]): Promise<void> {
  const { rows } = await db.query<{ rolname: string }>(`SELECT rolname FROM pg_roles WHERE rolname = ANY ($1)`, [roles]);
  const missing = roles.filter((r) => !rows.some((row) => row.rolname === r));
  if (missing.length > 0) {
    throw new TenantfenceError(ErrorCodes.NOT_INITIALISED, `Role ${missing[0]} does not exist; run \`tenantfence init\` with the same --app-role/--agent-role first.`);
  }
}
