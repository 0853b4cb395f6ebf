/**
 * What the argv layer's commands share: the shape of a command, common flags, and opening the
 * database a command works on (and closing it, embedded server included, whatever happens).
 */
import type { ParseArgsConfig } from 'node:util';
import { TenantfenceError, ErrorCodes } from '../errors.ts';
import { connect, openDatabase, type DatabaseTarget } from '../embedded/database.ts';
import type { Io } from './io.ts';

export type Options = NonNullable<ParseArgsConfig['options']>;
export type Values = Record<string, string | boolean | string[] | undefined>;

export interface Command {
  readonly summary: string;
  readonly usage: string;
  readonly options: Options;
  run(values: Values, positionals: string[], io: Io): Promise<number>;
}

export const dbOption: Options = { 'database-url': { type: 'string' } };
/** For commands that act on the user's database: without one they refuse unless --embedded. */
export const userDbOptions: Options = { ...dbOption, embedded: { type: 'boolean' } };
export const roleOptions: Options = { 'app-role': { type: 'string' }, 'agent-role': { type: 'string' } };

export function str(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/** Flags shared by serve and mcp; --database-url stands in for DATABASE_URL. */
export function common(v: Values) {
  const url = str(v['database-url']);
  const expose = Array.isArray(v.expose) ? v.expose : undefined;
  return { write: Boolean(v.write), agentRole: str(v['agent-role']), ...(expose ? { expose } : {}), env: url ? { ...process.env, DATABASE_URL: url } : process.env };
}

/** A whole-number flag within [min, max]; `fallback` when absent. */
export function integer(value: unknown, flag: string, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!/^[0-9]+$/.test(String(value)) || n < min || n > max) throw new TenantfenceError(ErrorCodes.USAGE, `${flag} must be a whole number from ${min} to ${max}.`);
  return n;
}

export function port(value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!/^[0-9]{1,5}$/.test(String(value)) || n > 65_535) throw new TenantfenceError(ErrorCodes.USAGE, '--port must be a port number (0-65535).');
  return n;
}

export async function openTarget(v: Values, io: Io, o: { embedded: boolean }): Promise<DatabaseTarget> {
  const target = await openDatabase({ url: str(v['database-url']), embedded: o.embedded });
  if (target.embedded) io.err('tenantfence: no DATABASE_URL; using an embedded PostgreSQL that is discarded on exit.\n');
  return target;
}

export async function withDb(v: Values, io: Io, fn: (db: Awaited<ReturnType<typeof connect>>) => Promise<number>): Promise<number> {
  const target = await openTarget(v, io, { embedded: Boolean(v.embedded) });
  try {
    const client = await connect(target.url);
    try {
      return await fn(client);
    } finally {
      await client.end().catch(() => undefined);
    }
  } finally {
    await target.close();
  }
}
