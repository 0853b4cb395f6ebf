/**
 * The public API of `tenantfence`. Every export here is public and versioned; Node-only parts
 * (the CLI, the embedded server) are not exported from the root.
 */
export { TenantfenceError, ErrorCodes, isTenantfenceError, type ErrorCode } from './errors.ts';
export {
  assertTenantId,
  isTenantId,
  runWithTenant,
  getTenant,
  tryGetTenant,
  signContext,
  parseSecret,
  generateKey,
  formatSecret,
  CONTEXT_SETTING,
  DEFAULT_TTL_SECONDS,
  type SigningKey,
  type SignOptions,
} from './context/index.ts';
