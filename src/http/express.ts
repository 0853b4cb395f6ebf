/**
 * `tenantfence/express` (Express 5): `app.use(requireTenant({ jwtSecret }))`. Each request's bearer
 * JWT (or, opted in, a trusted proxy header) names the tenant; the next handlers run inside that
 * tenant's context, so `getTenant()` and the bindings' `withTenant(db, fn)` find it, and
 * `res.locals.tenantfence` holds the principal. A missing or invalid token is a 401 with
 * `{"error": {"code", "message"}}` and the chain stops.
 *
 * The request and response are typed by what this uses, so the package's types do not need
 * `@types/express`.
 */
import { authFailure, authOptionsFromEnv, createRequestAuthenticator, nodeHeaders, type RequestAuthOptions } from '../auth/index.ts';
import { runWithTenant } from '../context/storage.ts';

export interface RequestLike {
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
}

export interface ResponseLike {
  locals: Record<string, unknown>;
  status(code: number): ResponseLike;
  set(field: string, value: string): ResponseLike;
  json(body: unknown): unknown;
}

export type NextFunction = (error?: unknown) => void;

/** Options default to the TENANTFENCE_JWT_* variables; bad options throw here, not on a request. */
export function requireTenant(options: RequestAuthOptions = authOptionsFromEnv(process.env)): (req: RequestLike, res: ResponseLike, next: NextFunction) => void {
  const authenticate = createRequestAuthenticator(options);
  return (req, res, next) => {
    authenticate(nodeHeaders(req.headers)).then(
      (principal) => {
        res.locals.tenantfence = principal;
        runWithTenant(principal.tenant, () => next());
      },
      (error: unknown) => {
        const failure = authFailure(error);
        if (!failure) return next(error);
        res.status(failure.status).set('WWW-Authenticate', failure.headers['WWW-Authenticate']!).json(failure.body);
      },
    );
  };
}
