/**
 * tenantfence's version, from its own package.json: one source instead of literals that drift.
 * This file sits one level below the package root both as src/version.ts and as dist/version.js.
 */
import { readFileSync } from 'node:fs';

export const VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
