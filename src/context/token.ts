/**
 * The signed tenant context (DESIGN.md, "Tamper-proof tenant context").
 *
 *   v1.<kid>.<tenant>.<expires-unix-seconds>.<xid or empty>.<hex HMAC-SHA256 of everything before it>
 *
 * The database verifies it in `tenantfence.current_tenant()` with the same key, which only the
 * NOLOGIN owner role can read; the database has no signing function. A forged, expired, malformed
 * or foreign-transaction token verifies to NULL, and NULL matches no row.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { TenantfenceError, ErrorCodes } from '../errors.ts';
import { assertTenantId } from './tenant-id.ts';

// The setting and the key pads are the database's side of the token (src/sql/): defined there.
export { CONTEXT_SETTING } from '../sql/roles.ts';
export { hmacPads } from '../sql/keys.ts';
export const DEFAULT_TTL_SECONDS = 300;

const KEY_ID = /^[a-z0-9]{1,16}$/;
const SECRET_TEXT = /^([a-z0-9]{1,16})\.([A-Za-z0-9_-]{43,})$/;

/** A key id plus at least 32 bytes of secret, written `<kid>.<base64url secret>`. */
export interface SigningKey {
  readonly kid: string;
  readonly secret: Buffer;
}

export function parseSecret(text: string | undefined): SigningKey {
  const m = text === undefined ? null : SECRET_TEXT.exec(text.trim());
  const secret = m ? Buffer.from(m[2]!, 'base64url') : undefined;
  if (!m || !secret || secret.length < 32) {
    throw new TenantfenceError(
      ErrorCodes.NO_SECRET,
      'TENANTFENCE_SECRET is missing or malformed; set it to the "<key id>.<secret>" value printed by `tenantfence init` or `tenantfence keys rotate`.',
    );
  }
  return Object.freeze({ kid: m[1]!, secret });
}

export function generateKey(kid?: string): SigningKey {
  const id = kid ?? randomBytes(5).toString('hex');
  if (!KEY_ID.test(id)) {
    throw new TenantfenceError(ErrorCodes.USAGE, 'A key id must be 1-16 lower-case letters or digits.');
  }
  return Object.freeze({ kid: id, secret: randomBytes(32) });
}

export function formatSecret(key: SigningKey): string {
  return `${key.kid}.${key.secret.toString('base64url')}`;
}

export interface SignOptions {
  /** Seconds until the token expires; keep it short, it only has to outlive one transaction. */
  readonly ttlSeconds?: number;
  /** Bind the token to one transaction id (strict mode). */
  readonly xid?: string;
  /** Clock, for tests. */
  readonly now?: () => number;
}

export function signContext(key: SigningKey, tenantId: string, options: SignOptions = {}): string {
  assertTenantId(tenantId);
  const ttl = options.ttlSeconds ?? DEFAULT_TTL_SECONDS;
  if (!Number.isInteger(ttl) || ttl < 1 || ttl > 86_400) {
    throw new TenantfenceError(ErrorCodes.USAGE, 'ttlSeconds must be an integer between 1 and 86400.');
  }
  const xid = options.xid ?? '';
  if (xid !== '' && !/^[0-9]{1,20}$/.test(xid)) {
    throw new TenantfenceError(ErrorCodes.USAGE, 'A transaction id to bind the context to must be a decimal number.');
  }
  const expires = Math.floor((options.now?.() ?? Date.now()) / 1000) + ttl;
  const payload = `v1.${key.kid}.${tenantId}.${expires}.${xid}`;
  const mac = createHmac('sha256', key.secret).update(payload).digest('hex');
  return `${payload}.${mac}`;
}
