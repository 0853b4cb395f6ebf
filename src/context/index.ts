export { assertTenantId, isTenantId } from './tenant-id.ts';
export {
  CONTEXT_SETTING,
  DEFAULT_TTL_SECONDS,
  formatSecret,
  generateKey,
  hmacPads,
  parseSecret,
  signContext,
  type SignOptions,
  type SigningKey,
} from './token.ts';
export { getTenant, runWithTenant, tryGetTenant } from './storage.ts';
