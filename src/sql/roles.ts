/** Default role names; `init --app-role` and `--agent-role` change them. */
export const OWNER_ROLE = 'tenantfence_owner';
export const DEFAULT_APP_ROLE = 'tenantfence_app';
export const DEFAULT_AGENT_ROLE = 'tenantfence_agent';
export const SCHEMA = 'tenantfence';
export const POLICY_NAME = 'tenantfence_isolation';
/** The audited admin path (src/sql/admin.ts): its role and its policy on tables protected --admin-access. */
export const ADMIN_ROLE = 'tenantfence_admin';
export const ADMIN_POLICY = 'tenantfence_admin';

/** The most connection roles `init --app-logins` creates. */
export const MAX_APP_LOGINS = 500;

/** The login roles of `init --app-logins N`: `<app>_c1` … `<app>_cN`. */
export function connectionRoleNames(app: string, count: number): string[] {
  return Array.from({ length: count }, (_, k) => `${app}_c${k + 1}`);
}

export interface Roles {
  readonly app: string;
  readonly agent: string;
}

/** The setting that carries the signed tenant context (src/context/token.ts) for one transaction. */
export const CONTEXT_SETTING = 'tenantfence.context';
