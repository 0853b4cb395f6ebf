/**
 * The attack that connection roles stop (test/core/connection-roles.test.ts, test/managed/suite.ts):
 * tenant B writes a row and sleeps inside its fenced transaction; while it sleeps, tenant A's SQL
 * reads B's statement from pg_stat_activity and tries to terminate B's backend.
 */
import { withTenant, type PgPoolLike } from '../../src/adapters/pg.ts';
import type { SigningKey } from '../../src/context/token.ts';
import { TENANT_A, TENANT_B } from './db.ts';

export const SESSION_MARKER = 'marker-of-tenant-b-7f3a';

export interface SessionAttack {
  /** A's role, and the statement texts A read for B's backend. */
  readonly seen: { readonly role: string; readonly texts: readonly string[] };
  readonly kill: { readonly terminated: boolean; readonly error: string | undefined };
  /** B's outcome: its role when it committed, or the error code. */
  readonly b: { readonly ok: true; readonly role: string } | { readonly ok: false; readonly code: string | undefined };
}

/** `insert` writes B's row from $1 (B) and $2 (SESSION_MARKER); the caller checks whether it committed. */
export async function attackConcurrentSession(pool: PgPoolLike, key: SigningKey, insert: string): Promise<SessionAttack> {
  let bPid!: (pid: number) => void;
  const pid = new Promise<number>((resolve) => { bPid = resolve; });
  const b = withTenant(pool, TENANT_B, async (c) => {
    await c.query(insert, [TENANT_B, SESSION_MARKER]);
    const { rows } = await c.query<{ pid: number; role: string }>('SELECT pg_backend_pid() AS pid, current_user AS role');
    bPid(rows[0]!.pid);
    await c.query(`SELECT pg_sleep(1.5), '${SESSION_MARKER}' AS m`);
    return rows[0]!.role;
  }, { key }).then((role) => ({ ok: true as const, role }), (error: { code?: string }) => ({ ok: false as const, code: error.code }));
  const target = await pid;
  await new Promise((r) => setTimeout(r, 200));
  const seen = await withTenant(pool, TENANT_A, async (c) => {
    const role = (await c.query<{ role: string }>('SELECT current_user AS role')).rows[0]!.role;
    const { rows } = await c.query<{ query: string | null }>('SELECT query FROM pg_catalog.pg_stat_activity WHERE pid = $1', [target]);
    return { role, texts: rows.map((r) => r.query ?? '') };
  }, { key });
  const kill = await withTenant(pool, TENANT_A, async (c) => (await c.query<{ t: boolean }>('SELECT pg_catalog.pg_terminate_backend($1) AS t', [target])).rows[0]!.t, { key })
    .then((t) => ({ terminated: t, error: undefined as string | undefined }), (error: { code?: string }) => ({ terminated: false, error: error.code }));
  return { seen, kill, b: await b };
}
