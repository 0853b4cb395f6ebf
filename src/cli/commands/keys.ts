import { TenantfenceError, ErrorCodes } from '../../errors.ts';
import { formatSecret, generateKey } from '../../context/token.ts';
import { applyInTransaction } from '../../sql/apply.ts';
import { addKeyStatement, assertInitialised, listKeys, retireKeyStatement, type KeyRow } from '../../sql/keys.ts';
import type { Queryable } from '../../sql/queryable.ts';

/** Adds a new signing key; tokens signed with older keys keep verifying until those are retired. */
export async function rotateKey(options: { db: Queryable }): Promise<{ keyId: string; secret: string }> {
  await assertInitialised(options.db);
  const key = generateKey();
  await applyInTransaction(options.db, [addKeyStatement(key)]);
  return { keyId: key.kid, secret: formatSecret(key) };
}

/** Retires a key: from the next statement on, tokens signed with it verify to no tenant. */
export async function retireKey(options: { db: Queryable; keyId: string }): Promise<KeyRow[]> {
  await assertInitialised(options.db);
  const keys = await listKeys(options.db);
  const target = keys.find((k) => k.kid === options.keyId && k.active);
  if (!target) {
    throw new TenantfenceError(ErrorCodes.USAGE, `No active key ${options.keyId}; see \`tenantfence keys list\`.`);
  }
  if (!keys.some((k) => k.active && k.kid !== options.keyId)) {
    throw new TenantfenceError(ErrorCodes.USAGE, `Key ${options.keyId} is the only active key and retiring it would lock every tenant out; run \`tenantfence keys rotate\` first.`);
  }
  await applyInTransaction(options.db, [retireKeyStatement(options.keyId)]);
  return listKeys(options.db);
}

export async function keysList(options: { db: Queryable }): Promise<KeyRow[]> {
  await assertInitialised(options.db);
  return listKeys(options.db);
}
