/** The JWT settings as environment variables: one list for `tenantfence serve`, `mcp` and the middleware. */
import type { AuthOptions } from './jwt.ts';

/** The JWT options from TENANTFENCE_* variables, as `tenantfence serve` reads them. */
export function authOptionsFromEnv(env: Record<string, string | undefined>): AuthOptions {
  const tolerance = env.TENANTFENCE_JWT_CLOCK_TOLERANCE_SECONDS;
  return {
    ...(env.TENANTFENCE_JWT_SECRET ? { jwtSecret: env.TENANTFENCE_JWT_SECRET } : {}),
    ...(env.TENANTFENCE_JWKS_URL ? { jwksUrl: env.TENANTFENCE_JWKS_URL } : {}),
    ...(env.TENANTFENCE_TENANT_CLAIM ? { tenantClaim: env.TENANTFENCE_TENANT_CLAIM } : {}),
    ...(env.TENANTFENCE_JWT_ISSUER ? { issuer: env.TENANTFENCE_JWT_ISSUER } : {}),
    ...(env.TENANTFENCE_JWT_AUDIENCE ? { audience: env.TENANTFENCE_JWT_AUDIENCE } : {}),
    ...(tolerance ? { clockToleranceSeconds: Number(tolerance) } : {}),
  };
}
