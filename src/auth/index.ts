export { bearerToken, createAuthenticator, type Authenticator, type AuthOptions, type Principal } from './jwt.ts';
export { authOptionsFromEnv } from './env.ts';
export {
  authFailure,
  createRequestAuthenticator,
  nodeHeaders,
  type AuthFailure,
  type HeaderReader,
  type RequestAuthenticator,
  type RequestAuthOptions,
} from './request.ts';
