/**
 * Where the tenant sits in a JWT. Identity providers disagree: a top-level claim (`tenant_id`,
 * Clerk's `org_id`), a namespaced one (Auth0's `https://example.com/tenant`, a single name with
 * dots and slashes in it), or a nested one (Supabase's `app_metadata.tenant_id`). A dotted path
 * would make the namespaced names ambiguous, so nesting is spelled as a JSON Pointer (RFC 6901),
 * which cannot be confused with a claim name because no registered or namespaced name starts with `/`.
 */
import { TenantfenceError, ErrorCodes } from '../errors.ts';

/** The claim as a list of property names from the payload down. */
export function parseClaimPath(claim: string): readonly string[] {
  if (!/^[A-Za-z0-9_:./~-]{1,128}$/.test(claim)) {
    throw new TenantfenceError(ErrorCodes.USAGE, 'The tenant claim must be 1-128 letters, digits or _:./~- characters: a claim name, or a JSON Pointer such as /app_metadata/tenant_id.');
  }
  if (!claim.startsWith('/')) return [claim];
  const steps = claim.slice(1).split('/');
  if (steps.some((s) => s === '' || /~(?![01])/.test(s))) {
    throw new TenantfenceError(ErrorCodes.USAGE, 'The tenant claim pointer has an empty step or a bad escape; write it as /outer/inner (~1 for "/", ~0 for "~").');
  }
  return steps.map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'));
}

/** The value at `path`, looking only at the payload's own properties (never the prototype chain). */
export function readClaim(payload: unknown, path: readonly string[]): unknown {
  let value = payload;
  for (const step of path) {
    if (value === null || typeof value !== 'object' || Array.isArray(value) || !Object.hasOwn(value, step)) return undefined;
    value = (value as Record<string, unknown>)[step];
  }
  return value;
}
