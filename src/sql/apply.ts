/**
 * Runs a plan in one transaction: all of it or none of it, so a failure never leaves a
 * half-applied migration (issue 2, item 8).
 */
import { toTenantfenceError } from '../errors.ts';
import type { Queryable } from './queryable.ts';
import type { Statement } from './statement.ts';

export async function applyInTransaction(db: Queryable, statements: readonly Statement[]): Promise<void> {
  await db.query('BEGIN');
  try {
    for (const s of statements) await db.query(s.text, s.values as unknown[] | undefined);
    await db.query('COMMIT');
  } catch (error) {
    await db.query('ROLLBACK').catch(() => undefined);
    throw toTenantfenceError(error);
  }
}

export { toTenantfenceError } from '../errors.ts';
