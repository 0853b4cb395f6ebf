/**
 * What a binding hands to the callback is only good while the fence is open. A handle kept past
 * the end (a closure, a promise left running) would otherwise reach a connection that is back in
 * the pool and possibly inside another tenant's fence; after the end it refuses instead.
 */
import { TenantfenceError, ErrorCodes } from '../errors.ts';

export class Lease {
  #open = true;

  /** Throws once the fence has ended. */
  check(): void {
    if (!this.#open) {
      throw new TenantfenceError(ErrorCodes.USAGE, 'This database handle belonged to a withTenant call that has ended; run the query inside the callback.');
    }
  }

  end(): void {
    this.#open = false;
  }
}

/** Resolves withTenant's two call shapes: (db, tenant, fn, options) and (db, fn, options). */
export function tenantArguments<F extends (...args: never[]) => unknown, O>(
  tenantOrFn: string | F,
  fnOrOptions: F | O | undefined,
  maybeOptions: O | undefined,
): [string | undefined, F, O | undefined] {
  const [tenant, fn, options] = typeof tenantOrFn === 'function'
    ? [undefined, tenantOrFn, fnOrOptions as O | undefined]
    : [tenantOrFn, fnOrOptions as F, maybeOptions];
  if (typeof fn !== 'function') throw new TenantfenceError(ErrorCodes.USAGE, 'withTenant needs a callback: withTenant(db, tenant, async (db) => …).');
  return [tenant, fn, options];
}
