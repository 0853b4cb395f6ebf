/**
 * `tenantfence/fastify` (Fastify 5): `app.register(requireTenant({ jwtSecret }))`. Each request's
 * bearer JWT (or, opted in, a trusted proxy header) names the tenant before the body is read; the
 * hooks and the handler then run inside that tenant's context, so `getTenant()` and the bindings'
 * `withTenant(db, fn)` find it, and `request.tenantfence` holds the principal. A missing or invalid
 * token is a 401 with `{"error": {"code", "message"}}` and the handler never runs.
 *
 * Registered without encapsulation (`skip-override`, what fastify-plugin sets), so it guards the
 * routes of the scope it is registered in.
 */
import type { FastifyPluginCallback } from 'fastify';
import { authFailure, authOptionsFromEnv, createRequestAuthenticator, nodeHeaders, type Principal, type RequestAuthOptions } from '../auth/index.ts';
import { runWithTenant } from '../context/storage.ts';

declare module 'fastify' {
  interface FastifyRequest {
    tenantfence: Principal | null;
  }
}

/** Options default to the TENANTFENCE_JWT_* variables; bad options throw here, not on a request. */
export function requireTenant(options: RequestAuthOptions = authOptionsFromEnv(process.env)): FastifyPluginCallback {
  const authenticate = createRequestAuthenticator(options);
  const plugin: FastifyPluginCallback = (fastify, _options, done) => {
    if (!fastify.hasRequestDecorator('tenantfence')) fastify.decorateRequest('tenantfence', null);
    fastify.addHook('onRequest', (request, reply, next) => {
      authenticate(nodeHeaders(request.headers)).then(
        (principal) => {
          request.tenantfence = principal;
          // Fastify's body parser resumes in the context it was entered from (an AsyncResource
          // of its own), so the later hooks and the handler run in this one.
          runWithTenant(principal.tenant, () => next());
        },
        (error: unknown) => {
          const failure = authFailure(error);
          if (!failure) return next(error as Error);
          reply.code(failure.status).headers(failure.headers).send(failure.body);
        },
      );
    });
    done();
  };
  Object.assign(plugin, { [Symbol.for('skip-override')]: true, [Symbol.for('fastify.display-name')]: 'tenantfence' });
  return plugin;
}
