/**
 * Who is asking: a JWT verified with `jose`, HS256 with a shared secret or any asymmetric
 * algorithm through a JWKS. The tenant is a claim (`tenant_id` unless configured, see
 * claim-path.ts), `sub` is the principal. Every failure is one TF_UNAUTHENTICATED error; the
 * caller answers 401 and runs nothing. The gateway (HTTP and MCP) and the HTTP middleware all
 * verify through this one function.
 */
import { createRemoteJWKSet, jwtVerify, errors, type JWTVerifyGetKey } from 'jose';
import { TenantfenceError, ErrorCodes } from '../errors.ts';
import { isTenantId } from '../context/tenant-id.ts';
import { parseClaimPath, readClaim } from './claim-path.ts';

export interface AuthOptions {
  /** HS256 secret (TENANTFENCE_JWT_SECRET), at least 32 bytes. */
  readonly jwtSecret?: string;
  /** JWKS URL (TENANTFENCE_JWKS_URL) for RS/PS/ES/EdDSA tokens. */
  readonly jwksUrl?: string;
  /** A key resolver instead of a URL (tests, or keys held in process). */
  readonly jwks?: JWTVerifyGetKey;
  /**
   * The claim that carries the tenant id (default `tenant_id`): a top-level claim name, taken
   * verbatim (`https://example.com/tenant` is one name), or a JSON Pointer (RFC 6901) into nested
   * claims when it starts with `/` (`/app_metadata/tenant_id`).
   */
  readonly tenantClaim?: string;
  readonly issuer?: string;
  readonly audience?: string;
  /** Clock skew accepted on `exp`/`nbf`, in seconds (default 5). */
  readonly clockToleranceSeconds?: number;
}

export interface Principal {
  readonly tenant: string;
  /** The JWT `sub`, or null when the token has none. */
  readonly subject: string | null;
}

export type Authenticator = (token: string | undefined) => Promise<Principal>;

const CACHE_SIZE = 10_000;
const CACHE_MS = 60_000;
const ASYMMETRIC = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];

/** Builds the verifier; bad options throw here, at construction, not on the first request. */
export function createAuthenticator(options: AuthOptions): Authenticator {
  const sources = [options.jwtSecret, options.jwksUrl, options.jwks].filter((x) => x !== undefined && x !== '');
  if (sources.length !== 1) {
    throw new TenantfenceError(ErrorCodes.USAGE, 'Configure exactly one JWT key source: TENANTFENCE_JWT_SECRET (HS256) or TENANTFENCE_JWKS_URL.');
  }
  const claim = options.tenantClaim ?? 'tenant_id';
  const path = parseClaimPath(claim);
  const tolerance = options.clockToleranceSeconds ?? 5;
  if (!Number.isFinite(tolerance) || tolerance < 0 || tolerance > 300) {
    throw new TenantfenceError(ErrorCodes.USAGE, 'The JWT clock tolerance must be 0 to 300 seconds.');
  }
  let verify: (jwt: string) => Promise<Record<string, unknown>>;
  const claims = {
    requiredClaims: ['exp'],
    clockTolerance: tolerance,
    ...(options.issuer ? { issuer: options.issuer } : {}),
    ...(options.audience ? { audience: options.audience } : {}),
  };
  if (options.jwtSecret) {
    const secret = new TextEncoder().encode(options.jwtSecret);
    if (secret.length < 32) {
      throw new TenantfenceError(ErrorCodes.USAGE, 'TENANTFENCE_JWT_SECRET must be at least 32 bytes; generate one with `openssl rand -base64 48`.');
    }
    verify = async (jwt) => (await jwtVerify(jwt, secret, { ...claims, algorithms: ['HS256'] })).payload;
  } else {
    let keys = options.jwks;
    if (!keys) {
      let url: URL;
      try {
        url = new URL(options.jwksUrl!);
      } catch {
        throw new TenantfenceError(ErrorCodes.USAGE, 'TENANTFENCE_JWKS_URL is not a URL; give the https:// address of your identity provider\'s JWKS.');
      }
      if (url.protocol !== 'https:' && url.protocol !== 'http:') {
        throw new TenantfenceError(ErrorCodes.USAGE, 'TENANTFENCE_JWKS_URL must be an http(s) URL.');
      }
      keys = createRemoteJWKSet(url);
    }
    const getKey = keys;
    verify = async (jwt) => (await jwtVerify(jwt, getKey, { ...claims, algorithms: ASYMMETRIC })).payload;
  }

  // An agent sends the same token many times; verifying it again (an async WebCrypto HMAC or
  // signature check) costs more than the rest of a small request. A verified token is remembered
  // until its own exp (or a minute, whichever is sooner), keyed by the whole token text.
  const verified = new Map<string, { principal: Principal; until: number }>();

  return async (token) => {
    if (!token) throw unauthenticated('Send the tenant\'s JWT as "Authorization: Bearer <token>".');
    const hit = verified.get(token);
    if (hit && hit.until > Date.now()) return hit.principal;
    if (hit) verified.delete(token);
    let payload: Record<string, unknown>;
    try {
      payload = await verify(token);
    } catch (error) {
      if (error instanceof errors.JWTExpired) throw unauthenticated('The bearer token has expired; get a new one and retry.');
      throw unauthenticated('The bearer token is not valid here; send a JWT signed with the configured key, with an "exp" claim.');
    }
    const tenant = readClaim(payload, path);
    if (!isTenantId(tenant)) {
      throw unauthenticated(`The bearer token has no valid "${claim}" claim; it must name the tenant (letters, digits, "-" or "_").`);
    }
    const sub = payload.sub;
    const principal = Object.freeze({ tenant, subject: typeof sub === 'string' && sub.length > 0 ? sub.slice(0, 256) : null });
    if (verified.size >= CACHE_SIZE) verified.delete(verified.keys().next().value!);
    verified.set(token, { principal, until: Math.min((payload.exp as number) * 1000, Date.now() + CACHE_MS) });
    return principal;
  };
}

/** The token from an Authorization header value, or undefined. */
export function bearerToken(header: string | undefined | null): string | undefined {
  const m = header ? /^Bearer\s+([A-Za-z0-9_.~+/=-]+)\s*$/i.exec(header) : null;
  return m?.[1];
}

export function unauthenticated(message: string): TenantfenceError {
  return new TenantfenceError(ErrorCodes.UNAUTHENTICATED, message);
}
