import { TenantfenceError, ErrorCodes } from '../../errors.ts';
import { applyChecked } from '../../audit/roles.ts';
import { assertInitialised } from '../../sql/keys.ts';
import { inspectTable, planProtect, protectAdvice } from '../../sql/protect.ts';
import { parseTableName } from '../../sql/quote.ts';
import type { Queryable } from '../../sql/queryable.ts';
import { DEFAULT_AGENT_ROLE, DEFAULT_APP_ROLE, type Roles } from '../../sql/roles.ts';
import { printStatements, sqlComment } from '../../sql/statement.ts';

export interface ProtectCommandOptions {
  readonly db: Queryable;
  readonly tables: readonly string[];
  readonly tenantColumn?: string;
  readonly appRole?: string;
  readonly agentRole?: string;
  readonly agentWrite?: boolean;
  /** Drop the tables' other permissive policies (otherwise protect refuses such a table). */
  readonly replacePolicies?: boolean;
  /** Protect tables with global unique keys or tenant-less foreign keys anyway (advice only). */
  readonly allowGlobalKeys?: boolean;
  /** The tenant column's DEFAULT becomes the verified tenant. */
  readonly defaultTenant?: boolean;
  /** Add the admin policy (withAdmin, docs/operations.md). */
  readonly adminAccess?: boolean;
  /** Plan only: needs the tables, not init (the SQL says what must be applied first). */
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
  const missing = await missingPrerequisites(options.db, roles);
  if (missing.length > 0 && !options.print) throw missing[0]!;
  const names = [...new Map(options.tables.map((t) => parseTableName(t)).map((t) => [`${t.schema}.${t.name}`, t])).values()];
  const infos = [];
  for (const name of names) infos.push(await inspectTable(options.db, name, tenantColumn));
  const statements = planProtect(infos, {
    tenantColumn,
    roles,
    agentWrite: options.agentWrite ?? false,
    replacePolicies: options.replacePolicies ?? false,
    allowGlobalKeys: options.allowGlobalKeys ?? false,
    defaultTenant: options.defaultTenant ?? false,
    adminAccess: options.adminAccess ?? false,
  });
  // A migration tool may apply this before init: say so in the SQL it pastes.
  const prelude = missing.length > 0
    ? `${sqlComment(`Apply after \`tenantfence init\` (or its --print SQL, roles ${roles.app} and ${roles.agent}): ${missing.map((e) => e.message).join(' ')}`)}\n\n`
    : '';
  const sql = prelude + printStatements(statements);
  const tables = infos.map((t) => `${t.schema}.${t.name}`);
  const advice = protectAdvice(infos, tenantColumn);
  if (options.print) return { tables, sql, applied: false, advice };
  // "protected" only when no role rule reports a way around the policy once it is in place
  await applyChecked(options.db, statements, roles, { end: 'COMMIT', tenantColumn, command: 'protect' });
  return { tables, sql, applied: true, advice };
}

/** What protect's SQL refers to that init creates: refused when applying, noted when printing. */
async function missingPrerequisites(db: Queryable, roles: Roles): Promise<TenantfenceError[]> {
  const out: TenantfenceError[] = [];
  try {
    await assertInitialised(db);
  } catch (error) {
    out.push(error as TenantfenceError);
  }
  const wanted = [roles.app, roles.agent];
  const { rows } = await db.query<{ rolname: string }>(`SELECT rolname FROM pg_roles WHERE rolname = ANY ($1)`, [wanted]);
  for (const role of wanted.filter((r) => !rows.some((row) => row.rolname === r))) {
    out.push(new TenantfenceError(ErrorCodes.NOT_INITIALISED, `Role ${role} does not exist; run \`tenantfence init\` with the same --app-role/--agent-role first.`));
  }
  return out;
}
