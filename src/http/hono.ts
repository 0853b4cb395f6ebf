/**
 * `tenantfence/hono`: `app.use('/api/*', requireTenant({ jwtSecret }))`. Each request's bearer JWT
 * (or, opted in, a trusted proxy header) names the tenant; the rest of the chain runs inside that
 * tenant's context, so `getTenant()` and the bindings' `withTenant(db, fn)` find it. A missing or
 * invalid token is a 401 with `{"error": {"code", "message"}}` and the handler never runs.
 */
import type { MiddlewareHandler } from 'hono';
import { authFailure, authOptionsFromEnv, createRequestAuthenticator, type Principal, type RequestAuthOptions } from '../auth/index.ts';
import { runWithTenant } from '../context/storage.ts';

export type TenantEnv = { Variables: { tenantfence: Principal } };

/** Options default to the TENANTFENCE_JWT_* variables; bad options throw here, not on a request. */
export function requireTenant(options: RequestAuthOptions = authOptionsFromEnv(globalThis.process?.env ?? {})): MiddlewareHandler<TenantEnv> {
  const authenticate = createRequestAuthenticator(options);
  return async (c, next) => {
    let principal: Principal;
    try {
      principal = await authenticate((name) => c.req.header(name));
    } catch (error) {
      const failure = authFailure(error);
      if (!failure) throw error;
      return c.json(failure.body, failure.status, failure.headers);
    }
    c.set('tenantfence', principal);
    await runWithTenant(principal.tenant, next);
  };
}
