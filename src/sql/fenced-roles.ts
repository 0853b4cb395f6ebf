/**
 * What makes a role unfit to be the app or agent role: anything that lets it skip a policy, turn
 * one off, or read the signing key. Checked through role membership too, because a member can
 * SET ROLE to what it belongs to (NOINHERIT does not stop that).
 */
import { OWNER_ROLE, POLICY_NAME } from './roles.ts';
import type { Queryable } from './queryable.ts';

/** Predefined roles that read or write around privileges (the key table) or see other sessions. */
const DANGEROUS_PREDEFINED = [
  'pg_read_all_data',
  'pg_write_all_data',
  'pg_read_server_files',
  'pg_write_server_files',
  'pg_execute_server_program',
  'pg_read_all_stats',
  'pg_monitor',
];

export interface FenceViolation {
  /** Attributes init can correct on a role it manages (the agent); the rest it refuses. */
  readonly kind: 'attribute' | 'reach';
  /** Completes "role X ...": "is a superuser", "can SET ROLE to admin, which has BYPASSRLS". */
  readonly reason: string;
}

export async function fenceViolations(db: Queryable, role: string): Promise<FenceViolation[]> {
  const { rows } = await db.query<{ o: number; reason: string }>(
    `WITH r AS (SELECT * FROM pg_catalog.pg_roles WHERE rolname = $1),
          reach AS (SELECT m.* FROM pg_catalog.pg_roles m, r WHERE pg_catalog.pg_has_role(r.oid, m.oid, 'MEMBER'))
     SELECT o, reason FROM (
       SELECT 1 AS o, 'is a superuser' AS reason FROM r WHERE rolsuper
       UNION ALL SELECT 2, 'has BYPASSRLS' FROM r WHERE rolbypassrls
       UNION ALL SELECT 3, 'has CREATEROLE (it can grant itself other roles)' FROM r WHERE rolcreaterole
       UNION ALL SELECT 4, 'has REPLICATION' FROM r WHERE rolreplication
       UNION ALL SELECT 5, format('can SET ROLE to %s, which %s', m.rolname,
                                  CASE WHEN m.rolsuper THEN 'is a superuser' WHEN m.rolbypassrls THEN 'has BYPASSRLS' ELSE 'has CREATEROLE' END)
                   FROM reach m, r WHERE m.oid <> r.oid AND (m.rolsuper OR m.rolbypassrls OR m.rolcreaterole)
       UNION ALL SELECT 6, format('can SET ROLE to %s, which reads the signing key', m.rolname) FROM reach m WHERE m.rolname = $2
       UNION ALL SELECT 7, format('can act as %s', m.rolname) FROM reach m WHERE m.rolname = ANY ($4)
       UNION ALL SELECT 8, format('owns protected table %s (an owner can switch its policies off)', c.oid::regclass)
                   FROM pg_catalog.pg_class c JOIN reach m ON m.oid = c.relowner
                  WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_policy p WHERE p.polrelid = c.oid AND p.polname = $3)
     ) v ORDER BY o, reason COLLATE "C"`,
    [role, OWNER_ROLE, POLICY_NAME, DANGEROUS_PREDEFINED],
  );
  return rows.map((r) => ({ kind: r.o <= 4 ? 'attribute' : 'reach', reason: r.reason }));
}
