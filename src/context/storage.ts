/**
 * The request's tenant, carried through async calls by one AsyncLocalStorage (Hono's
 * contextStorage shape): middleware calls `runWithTenant`, code deeper down calls `getTenant`.
 * This only names the tenant; isolation is enforced by the database context that the adapters
 * set per transaction.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { TenantfenceError, ErrorCodes } from '../errors.ts';
import { assertTenantId } from './tenant-id.ts';

const storage = new AsyncLocalStorage<string>();

export function runWithTenant<T>(tenantId: string, fn: () => T): T {
  assertTenantId(tenantId);
  return storage.run(tenantId, fn);
}

export function getTenant(): string {
  const tenant = storage.getStore();
  if (tenant === undefined) {
    throw new TenantfenceError(
      ErrorCodes.NO_TENANT,
      'No tenant is set here; call this inside runWithTenant() or behind the tenantfence HTTP middleware.',
    );
  }
  return tenant;
}

export function tryGetTenant(): string | undefined {
  return storage.getStore();
}
