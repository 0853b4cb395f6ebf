import { TenantfenceError, ErrorCodes } from '../../errors.ts';
import { formatSecret, generateKey, parseSecret, type SigningKey } from '../../context/token.ts';
import { planInit } from '../../sql/init.ts';
import { addKeyStatement, keyMatches } from '../../sql/keys.ts';
import { applyInTransaction } from '../../sql/apply.ts';
import { DEFAULT_AGENT_ROLE, DEFAULT_APP_ROLE, POLICY_NAME, type Roles } from '../../sql/roles.ts';
import { printStatements, type Statement } from '../../sql/statement.ts';
import type { Queryable } from '../../sql/queryable.ts';

export interface InitOptions {
  readonly db: Queryable;
  readonly appRole?: string;
  readonly agentRole?: string;
  /** The agent role may log in (default true: the gateway connects as it). */
  readonly agentLogin?: boolean;
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
}

export async function init(options: InitOptions): Promise<InitResult> {
  const roles = { app: options.appRole ?? DEFAULT_APP_ROLE, agent: options.agentRole ?? DEFAULT_AGENT_ROLE };
  if (roles.app === roles.agent) {
    throw new TenantfenceError(ErrorCodes.USAGE, 'The app role and the agent role must be different roles; pass distinct --app-role and --agent-role.');
  }
  await refuseUnsafeAppRole(options.db, roles.app);
  const statements: Statement[] = planInit({ roles, agentLogin: options.agentLogin ?? true });

  let key: SigningKey | undefined;
  let generated: string | undefined;
  if (options.secret !== undefined && options.secret !== '') {
    key = parseSecret(options.secret);
    if ((await keysTableExists(options.db)) && (await keyMatches(options.db, key)) === false) {
      throw new TenantfenceError(ErrorCodes.NO_SECRET, `Key ${key.kid} is already stored with a different secret; use the stored secret or rotate with \`tenantfence keys rotate\`.`);
    }
  } else if (!(await hasActiveKey(options.db))) {
    key = generateKey();
    generated = formatSecret(key);
  }
  if (key) statements.push(addKeyStatement(key));

  const sql = printStatements(statements);
  if (options.print) return { roles, sql, applied: false, keyId: key?.kid, generatedSecret: undefined };
  await applyInTransaction(options.db, statements);
  return { roles, sql, applied: true, keyId: key?.kid, generatedSecret: generated };
}

/** Issue 2: init refuses an app role that would skip policies. */
async function refuseUnsafeAppRole(db: Queryable, role: string): Promise<void> {
  const { rows } = await db.query<{ rolsuper: boolean; rolbypassrls: boolean; owned: string[] }>(
    `SELECT r.rolsuper, r.rolbypassrls,
            ARRAY(SELECT DISTINCT n.nspname || '.' || c.relname FROM pg_class c
                    JOIN pg_namespace n ON n.oid = c.relnamespace
                    JOIN pg_policy p ON p.polrelid = c.oid AND p.polname = $2
                   WHERE c.relowner = r.oid ORDER BY 1) AS owned
       FROM pg_roles r WHERE r.rolname = $1`,
    [role, POLICY_NAME],
  );
  const r = rows[0];
  if (!r) return;
  if (r.rolsuper || r.rolbypassrls) {
    throw new TenantfenceError(
      ErrorCodes.UNSAFE_ROLE,
      `Role ${role} is ${r.rolsuper ? 'a superuser' : 'BYPASSRLS'} and would skip every policy; use another --app-role or ALTER ROLE ${role} ${r.rolsuper ? 'NOSUPERUSER' : 'NOBYPASSRLS'}.`,
    );
  }
  if (r.owned.length > 0) {
    throw new TenantfenceError(
      ErrorCodes.UNSAFE_ROLE,
      `Role ${role} owns protected table ${r.owned[0]} and an owner can turn its policies off; ALTER TABLE ... OWNER TO a migration role first.`,
    );
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

