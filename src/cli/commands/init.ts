import { TenantfenceError, ErrorCodes } from '../../errors.ts';
import { formatSecret, generateKey, parseSecret, type SigningKey } from '../../context/token.ts';
import { planInit } from '../../sql/init.ts';
import { unappliedHardening } from '../../sql/hardening.ts';
import { planLockdown, unappliedLockdown } from '../../sql/lockdown.ts';
import { addKeyStatement, storedKey } from '../../sql/keys.ts';
import { toTenantfenceError } from '../../sql/apply.ts';
import { connectionRoleNames, DEFAULT_AGENT_ROLE, DEFAULT_APP_ROLE, MAX_APP_LOGINS, type Roles } from '../../sql/roles.ts';
import { applyChecked } from '../../audit/roles.ts';
import type { Finding } from '../../audit/finding.ts';
import { passwordStatement } from '../../sql/password.ts';
import { printStatements, sqlComment, type Statement } from '../../sql/statement.ts';
import type { Queryable } from '../../sql/queryable.ts';

/** Where `init --app-password/--agent-password` read the passwords: never from argv. */
export const APP_PASSWORD_ENV = 'TENANTFENCE_APP_PASSWORD';
export const AGENT_PASSWORD_ENV = 'TENANTFENCE_AGENT_PASSWORD';

export interface InitOptions {
  readonly db: Queryable;
  readonly appRole?: string;
  readonly agentRole?: string;
  /** The agent role may log in (default true: the gateway connects as it). */
  readonly agentLogin?: boolean;
  /** Let the app role create temporary objects (default false). */
  readonly appTemp?: boolean;
  /** Login roles for one pooled connection each, members of the app role (`rolePool`); default 0. */
  readonly appLogins?: number;
  /** Passwords for the app and agent roles (the CLI reads them from the environment only). */
  readonly appPassword?: string;
  readonly agentPassword?: string;
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
  const appLogins = options.appLogins ?? 0;
  const logins = connectionRoleNames(roles.app, appLogins);
  if (!Number.isInteger(appLogins) || appLogins < 0 || appLogins > MAX_APP_LOGINS || logins.some((name) => name.length > 63)) {
    throw new TenantfenceError(ErrorCodes.USAGE, `--app-logins takes a whole number from 0 to ${MAX_APP_LOGINS}, and "<app role>_c<N>" must fit PostgreSQL's 63 characters.`);
  }
  const statements: Statement[] = [
    ...planInit({ roles, agentLogin: options.agentLogin ?? true, appTemp: options.appTemp ?? false, appLogins }),
    planLockdown(roles),
  ];
  if (options.appPassword !== undefined) {
    for (const role of [roles.app, ...logins]) statements.push(passwordStatement(role, options.appPassword, APP_PASSWORD_ENV));
  }
  if (options.agentPassword !== undefined) statements.push(passwordStatement(roles.agent, options.agentPassword, AGENT_PASSWORD_ENV));

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
  } else if (!options.print && !(await hasActiveKey(options.db))) {
    // A key generated for --print would be shown nowhere: the printed SQL says how to add one.
    key = generateKey();
    generated = formatSecret(key);
  }
  if (key) statements.push(addKeyStatement(key));

  let sql = printStatements(statements);
  if (options.print) {
    const rehearsal = await applyChecked(options.db, statements, roles, { end: 'ROLLBACK', command: 'init', tolerated: skippedHardening }).then(() => undefined, (error: unknown) => {
      if ((error as TenantfenceError).code === ErrorCodes.UNSAFE_ROLE) throw error;
      return toTenantfenceError(error).message;
    });
    sql = (rehearsal ? `${sqlComment(`Not rehearsed on this database (${rehearsal}); run \`tenantfence audit\` after applying it.`)}\n\n` : '') + sql;
    sql += key
      ? `\n-- Next: store key ${key.kid} (not printed): after applying this SQL, run \`tenantfence init\` once with TENANTFENCE_SECRET set; it finds everything else in place.\n`
      : (await hasActiveKey(options.db)) ? ''
      : `\n-- Next: this SQL stores no signing key. After applying it, run \`tenantfence keys rotate\` against the database: it stores a new key and prints TENANTFENCE_SECRET once.\n`;
    return { roles, sql, applied: false, keyId: key?.kid, generatedSecret: undefined, warnings: [] };
  }
  await applyChecked(options.db, statements, roles, { end: 'COMMIT', command: 'init', tolerated: skippedHardening });
  return { roles, sql, applied: true, keyId: key?.kid, generatedSecret: generated, warnings: [...(await unappliedHardening(options.db)), ...(await unappliedLockdown(options.db, roles))] };
}

/**
 * init revokes CREATE on schema public and TEMPORARY on the database from PUBLIC; PostgreSQL skips
 * that (with a warning) when another role owns them, the normal case on managed servers. The agent
 * then still holds them through PUBLIC, which agent-role-dangerous-privilege reports. init reports
 * those gaps itself, with the statement the owner must run (result.warnings), instead of refusing.
 */
async function skippedHardening(db: Queryable): Promise<(f: Finding) => boolean> {
  const gaps = await unappliedHardening(db);
  const publicCreate = gaps.some((g) => g.includes('create objects in schema public'));
  const databaseTemp = gaps.some((g) => g.includes('create temporary objects in database'));
  return (f) =>
    f.rule === 'agent-role-dangerous-privilege' &&
    ((publicCreate && f.object === 'public' && / can CREATE in schema public,/.test(f.detail)) ||
      (databaseTemp && / holds TEMPORARY on database /.test(f.detail)));
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

