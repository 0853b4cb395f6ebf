/**
 * Signing keys in `tenantfence.keys`. Only the pads are stored; the table is readable by its
 * NOLOGIN owner alone, which is what `current_tenant()` runs as. Rotation adds a key and leaves the
 * old one valid until it is retired, so tokens in flight keep working.
 */
import { createHash } from 'node:crypto';
import { qualified } from './quote.ts';
import { SCHEMA } from './roles.ts';
import { sql, type Statement } from './statement.ts';
import type { SigningKey } from '../context/token.ts';
import { TenantfenceError, ErrorCodes } from '../errors.ts';
import type { Queryable } from './queryable.ts';

/**
 * The HMAC pads, precomputed so the database computes HMAC-SHA256 with two calls of the built-in
 * `sha256()` (RFC 2104) and needs no pgcrypto.
 */
export function hmacPads(key: SigningKey): { inner: Buffer; outer: Buffer } {
  const block = Buffer.alloc(64);
  // RFC 2104: a key longer than the block is hashed first.
  (key.secret.length > 64 ? createHash('sha256').update(key.secret).digest() : key.secret).copy(block);
  const inner = Buffer.alloc(64);
  const outer = Buffer.alloc(64);
  for (let i = 0; i < 64; i++) {
    inner[i] = block[i]! ^ 0x36;
    outer[i] = block[i]! ^ 0x5c;
  }
  return { inner, outer };
}

const KEYS = qualified(SCHEMA, 'keys');

export interface KeyRow {
  readonly kid: string;
  readonly active: boolean;
}

export function addKeyStatement(key: SigningKey): Statement {
  const { inner, outer } = hmacPads(key);
  return sql(
    `INSERT INTO ${KEYS} (kid, inner_pad, outer_pad) VALUES ($1, $2, $3) ON CONFLICT (kid) DO NOTHING`,
    [key.kid, inner, outer],
    `signing key ${key.kid} is inserted with bind parameters and never printed; run \`tenantfence init\` or \`tenantfence keys rotate\` against the database`,
  );
}

export async function listKeys(db: Queryable): Promise<KeyRow[]> {
  const { rows } = await db.query<KeyRow>(`SELECT kid, retired_at IS NULL AS active FROM ${KEYS} ORDER BY created_at, kid`);
  return rows;
}

/** How the stored key with this id relates to the given secret. */
export async function storedKey(db: Queryable, key: SigningKey): Promise<'absent' | 'same' | 'different' | 'retired'> {
  const { inner } = hmacPads(key);
  const { rows } = await db.query<{ same: boolean; retired: boolean }>(
    `SELECT inner_pad = $2 AS same, retired_at IS NOT NULL AS retired FROM ${KEYS} WHERE kid = $1`,
    [key.kid, inner],
  );
  const row = rows[0];
  return !row ? 'absent' : !row.same ? 'different' : row.retired ? 'retired' : 'same';
}

export function retireKeyStatement(kid: string): Statement {
  return sql(`UPDATE ${KEYS} SET retired_at = now() WHERE kid = $1 AND retired_at IS NULL`, [kid], `retire key ${kid}`);
}

export async function assertInitialised(db: Queryable): Promise<void> {
  const { rows } = await db.query<{ ok: boolean }>(`SELECT to_regprocedure('tenantfence.current_tenant()') IS NOT NULL AS ok`);
  if (!rows[0]?.ok) {
    throw new TenantfenceError(ErrorCodes.NOT_INITIALISED, 'This database has no tenantfence schema; run `tenantfence init` first.');
  }
}
