/**
 * Runs a plan in one transaction: all of it or none of it, so a failure never leaves a
 * half-applied migration (issue 2, item 8).
 */
import { TenantfenceError, ErrorCodes, isTenantfenceError } from '../errors.ts';
import type { Queryable } from './queryable.ts';
import type { Statement } from './statement.ts';

export interface Session extends Queryable {
  release?(): void;
}

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

/** Maps a driver error to a coded one whose message names the fix and carries no data. */
export function toTenantfenceError(error: unknown): TenantfenceError {
  if (isTenantfenceError(error)) return error;
  const code = (error as { code?: unknown })?.code;
  if (code === '42501') {
    return new TenantfenceError(
      ErrorCodes.PRIVILEGE,
      'The connected role lacks a privilege this needs; connect as the database owner or a role with CREATEROLE and ownership of the tables.',
      { cause: error },
    );
  }
  if (typeof code === 'string' && /^(08|28|3D|57P03|ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ETIMEDOUT)/.test(code)) {
    return new TenantfenceError(ErrorCodes.CONNECTION, 'Could not connect to the database; check DATABASE_URL and that the server is running.', { cause: error });
  }
  const message = error instanceof Error ? error.message : String(error);
  return new TenantfenceError(ErrorCodes.DATABASE, `The database refused the change (${typeof code === 'string' ? code + ': ' : ''}${message}); fix the cause and run the command again.`, { cause: error });
}
