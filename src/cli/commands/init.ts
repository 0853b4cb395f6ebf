import { TenantfenceError, ErrorCodes } from '../../errors.ts';
import { formatSecret, generateKey, parseSecret, type SigningKey } from '../../context/token.ts';
import { planInit } from '../../sql/init.ts';
import { unappliedHardening } from '../../sql/hardening.ts';
import { planLockdown, unappliedLockdown } from '../../sql/lockdown.ts';
import { addKeyStatement, storedKey } from '../../sql/keys.ts';
import { applyInTransaction } from '../../sql/apply.ts';
import { DEFAULT_AGENT_ROLE, DEFAULT_APP_ROLE, type Roles } from '../../sql/roles.ts';
import { fenceViolations } from '../../sql/fenced-roles.ts';
import { printStatements, type Statement } from '../../sql/statement.ts';
import type { Queryable } from '../../sql/queryable.ts';

export interface InitOptions {
  readonly db: Queryable;
  readonly appRole?: string;
  readonly agentRole?: string;
  /** The agent role may log in (default true: the gateway connects as it). */
  readonly agentLogin?: boolean;
  /** Let the app role create temporary objects (default false). */
  readonly appTemp?: boolean;
  /** `<kid>.<secret>` from TENANTFENCE_SECRET; when absent a key is generated (once). */
  readonly secret?: string | undefined;
  /** Plan only: return the SQL, run nothing. */
  readonly print?: boolean;
}

export interface InitResult {
  readonly roles: Roles;
  readonly sql: string;
  readonly applied: boolean;
  readonly keyId: string | undefined;
  /** Set only when init generated the key: shown once, stored nowhere else readable. */
  readonly generatedSecret: string | undefined;
  /** Hardening PostgreSQL did not apply for the connected role, each with what its owner must run. */
  readonly warnings: readonly string[];
}

export async function init(options: InitOptions): Promise<InitResult> {
  const roles = { app: options.appRole ?? DEFAULT_APP_ROLE, agent: options.agentRole ?? DEFAULT_AGENT_ROLE };
  if (roles.app === roles.agent) {
    throw new TenantfenceError(ErrorCodes.USAGE, 'The app role and the agent role must be different roles; pass distinct --app-role and --agent-role.');
  }
  await refuseUnfitRoles(options.db, roles);
  const statements: Statement[] = [
    ...planInit({ roles, agentLogin: options.agentLogin ?? true, appTemp: options.appTemp ?? false }),
    planLockdown(roles),
  ];

  let key: SigningKey | undefined;
  let generated: string | undefined;
  if (options.secret !== undefined && options.secret !== '') {
    key = parseSecret(options.secret);
    const stored = (await keysTableExists(options.db)) ? await storedKey(options.db, key) : 'absent';
    if (stored === 'different') {
      throw new TenantfenceError(ErrorCodes.NO_SECRET, `Key ${key.kid} is already stored with a different secret; use the stored secret or rotate with \`tenantfence keys rotate\`.`);
    }
    if (stored === 'retired') {
      // Every token signed with it would verify to no tenant: the app would see nothing at all.
      throw new TenantfenceError(ErrorCodes.NO_SECRET, `Key ${key.kid} in TENANTFENCE_SECRET is retired; set TENANTFENCE_SECRET to an active key (tenantfence keys list, keys rotate).`);
    }
  } else if (!(await hasActiveKey(options.db))) {
    key = generateKey();
    generated = formatSecret(key);
  }
  if (key) statements.push(addKeyStatement(key));

  const sql = printStatements(statements);
  if (options.print) return { roles, sql, applied: false, keyId: key?.kid, generatedSecret: undefined, warnings: [] };
  await applyInTransaction(options.db, statements);
  return { roles, sql, applied: true, keyId: key?.kid, generatedSecret: generated, warnings: [...(await unappliedHardening(options.db)), ...(await unappliedLockdown(options.db, roles))] };
}

/**
 * Issue 2: init refuses an app role that could skip or switch off a policy or read the key, and
 * an agent role that could reach such a role (its own attributes init corrects).
 */
async function refuseUnfitRoles(db: Queryable, roles: Roles): Promise<void> {
  for (const [role, which] of [[roles.app, 'app'], [roles.agent, 'agent']] as const) {
    const problem = (await fenceViolations(db, role)).find((v) => which === 'app' || v.kind === 'reach');
    if (problem) {
      throw new TenantfenceError(
        ErrorCodes.UNSAFE_ROLE,
        `The ${which} role ${role} ${problem.reason}, so it could get around row level security; use another --${which}-role or remove that.`,
      );
    }
  }
}

async function keysTableExists(db: Queryable): Promise<boolean> {
  const { rows } = await db.query<{ ok: boolean }>(`SELECT to_regclass('tenantfence.keys') IS NOT NULL AS ok`);
  return rows[0]?.ok === true;
}

async function hasActiveKey(db: Queryable): Promise<boolean> {
  if (!(await keysTableExists(db))) return false;
  const { rows } = await db.query(`SELECT 1 FROM tenantfence.keys WHERE retired_at IS NULL LIMIT 1`);
  return rows.length > 0;
}

