/**
 * A request's tenant, for the HTTP middleware: from the bearer JWT (jwt.ts), or, only when asked
 * for, from a header that an authenticating proxy in front of the app sets (an API gateway, an
 * auth sidecar). Trusting a header is off by default: anyone who can reach the app directly can
 * send it, so it is only right when the proxy is the sole way in and overwrites the header.
 */
import { TenantfenceError, ErrorCodes, isTenantfenceError } from '../errors.ts';
import { isTenantId } from '../context/tenant-id.ts';
import { bearerToken, createAuthenticator, unauthenticated, type AuthOptions, type Principal } from './jwt.ts';

export interface RequestAuthOptions extends AuthOptions {
  /**
   * Opt-in: take the tenant id from this request header (set by an authenticating proxy) instead
   * of verifying a JWT. Give it instead of a JWT key, never together with one.
   */
  readonly trustProxyHeader?: string;
}

/** Reads one request header by lower-case name. */
export type HeaderReader = (name: string) => string | undefined;

/**
 * Node's parsed headers as a HeaderReader. A repeated header is refused rather than guessed at:
 * two Authorization headers are not one token.
 */
export function nodeHeaders(headers: Readonly<Record<string, string | string[] | undefined>>): HeaderReader {
  return (name) => {
    const value = headers[name];
    return Array.isArray(value) ? undefined : value;
  };
}

export type RequestAuthenticator = (header: HeaderReader) => Promise<Principal>;

/** Builds the request check; bad options throw here, at construction. */
export function createRequestAuthenticator(options: RequestAuthOptions): RequestAuthenticator {
  const { trustProxyHeader, ...jwt } = options;
  if (trustProxyHeader === undefined) {
    const authenticate = createAuthenticator(jwt);
    return (header) => authenticate(bearerToken(header('authorization')));
  }
  if (jwt.jwtSecret || jwt.jwksUrl || jwt.jwks) {
    throw new TenantfenceError(ErrorCodes.USAGE, 'Give either a JWT key source or trustProxyHeader, not both: a proxy header would let a request skip the JWT.');
  }
  const name = trustProxyHeader.toLowerCase();
  if (!/^[a-z0-9-]{1,64}$/.test(name) || name === 'authorization' || name === 'cookie' || name === 'host') {
    throw new TenantfenceError(ErrorCodes.USAGE, 'trustProxyHeader must be a header name of letters, digits and "-", such as x-tenant-id.');
  }
  return async (header) => {
    const tenant = header(name)?.trim();
    if (!tenant) throw unauthenticated(`The request has no ${name} header; send it through the authenticating proxy.`);
    if (!isTenantId(tenant)) throw unauthenticated(`The ${name} header is not a valid tenant id (letters, digits, "-" or "_").`);
    return Object.freeze({ tenant, subject: null });
  };
}

export interface AuthFailure {
  readonly status: 401;
  readonly headers: Record<string, string>;
  readonly body: { readonly error: { readonly code: string; readonly message: string } };
}

/** The 401 answer for a failed check, or undefined when the error is not a tenantfence one (a bug, not a 401). */
export function authFailure(error: unknown): AuthFailure | undefined {
  if (!isTenantfenceError(error)) return undefined;
  return { status: 401, headers: { 'WWW-Authenticate': 'Bearer' }, body: { error: { code: error.code, message: error.message } } };
}
