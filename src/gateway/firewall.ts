/**
 * PLACEHOLDER — replaced by the real parse-tree firewall (issue 3, item 3) on merge.
 *
 * This file only fixes the interface the gateway codes against so the gateway branch builds and
 * its tests run. It is deliberately crude (a few text checks, no parser) and is NOT a security
 * boundary: the gateway's tests prove the database-layer defences hold without it. Do not extend
 * it; take the real `src/gateway/firewall.ts` from the firewall branch instead.
 */
import { createHash } from 'node:crypto';

export type FirewallMode = 'read' | 'write';

export interface FirewallOptions {
  mode: FirewallMode;
  maxBytes?: number;
  maxDepth?: number;
}

export type FirewallVerdict =
  | { ok: true; kind: 'select' | 'insert' | 'update' | 'delete'; fingerprint: string; paramCount: number }
  | { ok: false; reason: string; message: string };

export async function loadFirewall(): Promise<void> {}

type Kind = 'select' | 'insert' | 'update' | 'delete';
const KINDS: Record<string, Kind> = { select: 'select', with: 'select', values: 'select', table: 'select', insert: 'insert', update: 'update', delete: 'delete' };
const BANNED = /\b(set_config|pg_sleep\w*|pg_advisory\w*|pg_terminate_backend|pg_cancel_backend|pg_read_\w+|lo_\w+|dblink\w*|pg_notify|current_setting)\s*\(|\bpg_stat\w*|\bpg_locks\b|\bfor\s+(update|share|no\s+key|key)\b/i;

export function checkSql(sql: string, options: FirewallOptions): FirewallVerdict {
  if (Buffer.byteLength(sql) > (options.maxBytes ?? 65_536)) return refuse('too_large', 'The statement is too large; send a shorter statement.');
  const text = sql.replace(/--[^\n]*|\/\*[\s\S]*?\*\//g, ' ').trim().replace(/;\s*$/, '');
  if (text === '') return refuse('empty', 'The statement is empty; send one SELECT statement.');
  if (text.includes(';')) return refuse('multiple_statements', 'Send exactly one statement, without semicolons between statements.');
  if (BANNED.test(text)) return refuse('function_not_allowed', 'The statement uses a function or relation that is not allowed; query the tables from /v1/schema only.');
  const first = /^\(*\s*([a-z]+)/i.exec(text)?.[1]?.toLowerCase() ?? '';
  const kind = KINDS[first];
  if (!kind) return refuse('statement_not_allowed', 'Only SELECT statements are allowed (and INSERT/UPDATE/DELETE in write mode).');
  if (kind !== 'select' && options.mode !== 'write') return refuse('write_not_allowed', 'This gateway is read-only; send a SELECT statement.');
  const paramCount = Math.max(0, ...[...text.matchAll(/\$(\d+)/g)].map((m) => Number(m[1])));
  const fingerprint = createHash('sha256').update(text.replace(/\s+/g, ' ').toLowerCase()).digest('hex').slice(0, 16);
  return { ok: true, kind, fingerprint, paramCount };
}

export function checkExplain(sql: string, options: FirewallOptions): FirewallVerdict {
  if (/^\s*explain\b/i.test(sql)) return refuse('explain_not_allowed', 'Send the statement to explain without the EXPLAIN keyword.');
  return checkSql(sql, options);
}

function refuse(reason: string, message: string): FirewallVerdict {
  return { ok: false, reason, message };
}
