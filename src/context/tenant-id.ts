import { TenantfenceError, ErrorCodes } from '../errors.ts';

/**
 * Tenant ids travel inside the signed context token, whose fields are separated by dots, so the
 * alphabet excludes `.`; it covers UUIDs, integers and slugs. Validation happens before any SQL
 * is sent, so a bad id never reaches the database (issue 2, item 5).
 */
const TENANT_ID = /^[A-Za-z0-9_-]{1,128}$/;

export function assertTenantId(value: unknown): asserts value is string {
  if (typeof value !== 'string' || !TENANT_ID.test(value)) {
    throw new TenantfenceError(
      ErrorCodes.INVALID_TENANT,
      'The tenant id is invalid; pass 1-128 characters of letters, digits, "-" or "_" (a UUID, an integer or a slug).',
    );
  }
}

export function isTenantId(value: unknown): value is string {
  return typeof value === 'string' && TENANT_ID.test(value);
}
