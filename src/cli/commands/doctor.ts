/**
 * `tenantfence doctor` (issue 9, item 5): checks a deployment the way the application and the
 * gateway will use it, read-only, and says what is wrong. The failure it exists for is silent: a
 * key in TENANTFENCE_SECRET that the database does not know (or has retired) makes every token
 * verify to no tenant, and every query returns no rows without an error.
 */
import { runAudit } from '../../audit/runner.ts';
import { loadRules } from '../../audit/registry.ts';
import { parseSecret, signContext, CONTEXT_SETTING, type SigningKey } from '../../context/token.ts';
import { connect, urlForRole } from '../../embedded/database.ts';
import { isTenantfenceError, toTenantfenceError } from '../../errors.ts';
import { storedKey } from '../../sql/keys.ts';
import type { Queryable } from '../../sql/queryable.ts';
import { DEFAULT_AGENT_ROLE, DEFAULT_APP_ROLE, SCHEMA } from '../../sql/roles.ts';

/** Rules doctor runs besides the role rules: tables left open, or closed to everyone. */
const TABLE_RULES = ['rls-disabled', 'rls-enabled-no-policy'];
/** A tenant id no real tenant has; the probe only checks that a token verifies. */
const PROBE_TENANT = 'tenantfence-doctor-probe';

export interface DoctorOptions {
  /** The administrative connection (DATABASE_URL). */
  readonly db: Queryable;
  /** Its URL, to log in as the agent when no agent URL is given (same server and database). */
  readonly url?: string;
  /** TENANTFENCE_SECRET as the application has it. */
  readonly secret?: string;
  /** TENANTFENCE_APP_DATABASE_URL: when set, the app role's login and fence are checked through it. */
  readonly appUrl?: string;
  /** TENANTFENCE_AGENT_DATABASE_URL (default: `url` as the agent role). */
  readonly agentUrl?: string;
  readonly appRole?: string;
  readonly agentRole?: string;
  readonly schemas?: readonly string[];
  readonly tenantColumn?: string;
}

export interface DoctorCheck {
  readonly check: string;
  readonly ok: boolean;
  readonly detail: string;
}

export async function doctor(options: DoctorOptions): Promise<DoctorCheck[]> {
  const roles = { app: options.appRole ?? DEFAULT_APP_ROLE, agent: options.agentRole ?? DEFAULT_AGENT_ROLE };
  const out: DoctorCheck[] = [];
  const { rows } = await options.db.query<{ ok: boolean }>(`SELECT to_regprocedure('tenantfence.current_tenant()') IS NOT NULL AS ok`);
  if (!rows[0]?.ok) {
    return [{ check: 'init', ok: false, detail: 'This database has no tenantfence schema: run `tenantfence init`.' }];
  }
  out.push({ check: 'init', ok: true, detail: `schema ${SCHEMA} and current_tenant() are installed` });

  const key = await keyCheck(options.db, options.secret, out);
  if (key) out.push(await verifies(options.db, key, 'the admin connection'));

  const rules = loadRules().filter((r) => (r.scope === 'role' && r.level === 'error') || TABLE_RULES.includes(r.id));
  const report = await runAudit(options.db, {
    schemas: options.schemas ?? ['public'],
    tenantColumn: options.tenantColumn ?? 'tenant_id',
    appRole: roles.app,
    agentRole: roles.agent,
    rules,
  });
  for (const note of report.notes.filter((n) => /role .* does not exist/.test(n))) out.push({ check: 'roles', ok: false, detail: note });
  for (const f of report.findings) out.push({ check: f.rule, ok: false, detail: `${f.detail} (tenantfence audit shows the fix)` });
  if (!report.findings.some((f) => f.level === 'error' && rules.find((r) => r.id === f.rule)?.scope === 'role')) {
    out.push({ check: 'roles', ok: true, detail: `no role rule reports ${roles.app} or ${roles.agent}` });
  }
  if (!report.findings.some((f) => TABLE_RULES.includes(f.rule))) {
    out.push({ check: 'tables', ok: true, detail: `${report.tables.length} tenant table(s), each with row level security and a policy` });
  }

  const agentUrl = options.agentUrl ?? (options.url ? urlForRole(options.url, roles.agent) : undefined);
  out.push(await login('agent login', agentUrl, roles.agent, undefined));
  if (options.appUrl) out.push(await login('app login', options.appUrl, roles.app, key));
  else out.push({ check: 'app login', ok: true, detail: 'not checked: set TENANTFENCE_APP_DATABASE_URL to the URL the application uses' });
  return out;
}

async function keyCheck(db: Queryable, secret: string | undefined, out: DoctorCheck[]): Promise<SigningKey | undefined> {
  if (!secret) {
    out.push({ check: 'key', ok: false, detail: 'TENANTFENCE_SECRET is not set: the application cannot sign a tenant context.' });
    return undefined;
  }
  let key: SigningKey;
  try {
    key = parseSecret(secret);
  } catch (error) {
    out.push({ check: 'key', ok: false, detail: `TENANTFENCE_SECRET is malformed: ${(error as Error).message}` });
    return undefined;
  }
  const state = await storedKey(db, key);
  const detail = {
    absent: `Key ${key.kid} in TENANTFENCE_SECRET is unknown to this database: every token verifies to no tenant and every query returns no rows. Use the key \`tenantfence init\` printed, or store this one with \`tenantfence init\`.`,
    different: `Key ${key.kid} in TENANTFENCE_SECRET is stored here with another secret: every token verifies to no tenant and every query returns no rows.`,
    retired: `Key ${key.kid} in TENANTFENCE_SECRET is retired: every token verifies to no tenant and every query returns no rows. Sign with an active key (\`tenantfence keys list\`).`,
    same: `key ${key.kid} is stored and active`,
  }[state];
  out.push({ check: 'key', ok: state === 'same', detail });
  return state === 'same' ? key : undefined;
}

/** A token signed with the key must verify to its tenant in the database, as `who`. */
async function verifies(db: Queryable, key: SigningKey, who: string): Promise<DoctorCheck> {
  await db.query('BEGIN READ ONLY');
  try {
    await db.query(`SELECT pg_catalog.set_config('${CONTEXT_SETTING}', $1, true)`, [signContext(key, PROBE_TENANT)]);
    const { rows } = await db.query<{ tenant: string | null }>('SELECT tenantfence.current_tenant() AS tenant');
    const ok = rows[0]?.tenant === PROBE_TENANT;
    return {
      check: 'context',
      ok,
      detail: ok ? `a context signed with key ${key.kid} verifies on ${who}`
        : `A context signed with key ${key.kid} does not verify on ${who} (check the server clock and that current_tenant() is tenantfence's); every query would return no rows.`,
    };
  } finally {
    await db.query('ROLLBACK').catch(() => undefined);
  }
}

async function login(check: string, url: string | undefined, role: string, key: SigningKey | undefined): Promise<DoctorCheck> {
  if (!url) return { check, ok: false, detail: `No URL to log in as ${role}: set TENANTFENCE_AGENT_DATABASE_URL.` };
  let client;
  try {
    client = await connect(url);
  } catch (error) {
    const mapped = isTenantfenceError(error) ? error : toTenantfenceError(error);
    return { check, ok: false, detail: `${role} cannot log in (${mapped.code}): ${mapped.message}` };
  }
  try {
    const { rows } = await client.query<{ user: string }>('SELECT current_user AS user');
    if (rows[0]?.user !== role) return { check, ok: false, detail: `The URL logs in as ${rows[0]?.user}, not ${role}.` };
    if (key) {
      const probe = await verifies(client, key, role);
      if (!probe.ok) return { check, ok: false, detail: probe.detail };
    }
    return { check, ok: true, detail: `${role} logs in${key ? ' and its signed context verifies' : ''}` };
  } finally {
    await client.end().catch(() => undefined);
  }
}
