/**
 * Runs the red-team corpus (corpus.ts) as tenant A through each layer, and judges every case on
 * tenant B's data (issue 10, item 4):
 * - unread: none of B's markers in anything the layer returned (rows, error, notice, tool text);
 * - unchanged: B's rows have the same checksum before and after;
 * - undetectable: an oracle case gets the same reply for a key of B's and for a missing key;
 * - unharmed: B's own request, sent while the attack runs, succeeds with B's rows, in time;
 * - and `expect: refused` cases (counts, statistics, other sessions) are refused or fail.
 * A layer is a `Door`: the gateway over HTTP, the MCP server, or `withTenant` (application SQL).
 */
import { loadCorpus, type Layer, type RedteamCase } from './corpus.ts';

export interface Reply {
  /** The layer answered with data (HTTP 200, a tool result without isError, a query without error). */
  readonly answered: boolean;
  /** Everything the caller saw: body, error, notices, tool text. */
  readonly text: string;
  /** What an oracle compares: the reply without per-request noise (ids, timings, nonces). */
  readonly shape: string;
}

export interface Door {
  readonly layer: Layer;
  /** Runs one case (placeholders filled in) as tenant A. */
  attack(c: RedteamCase): Promise<Reply>;
  /** Tenant B's own request; resolves with what B saw (the same as before the attacks when unharmed). */
  control(): Promise<string>;
}

export interface Target {
  readonly doors: readonly Door[];
  /** Strings only B's data holds. */
  readonly markers: readonly string[];
  readonly tenants: { readonly a: string; readonly b: string };
  /** A key of B's row and a key nobody has, for oracle cases. */
  readonly keys: { readonly existing: string; readonly missing: string };
  /** A's own context token with B's id swapped in (the strongest forgery A can make), if known. */
  readonly forged: string;
  checksumB(): Promise<string>;
}

export type Verdict = 'held' | 'leaked' | 'not-claimed';

export interface CaseResult {
  readonly id: string;
  readonly layer: Layer;
  readonly category: string;
  readonly verdict: Verdict;
  readonly evidence: string;
}

export interface RedteamResult {
  readonly total: number;
  readonly leaked: number;
  readonly cases: CaseResult[];
}

/** How long B's request may take while an attack runs: its own time at rest, many times over. */
const SLOW_FACTOR = 20;
const SLOW_FLOOR_MS = 1000;

export async function runCorpus(target: Target, cases: readonly RedteamCase[] = loadCorpus()): Promise<RedteamResult> {
  const results: CaseResult[] = [];
  for (const door of target.doors) {
    const expected = await door.control();
    const started = performance.now();
    for (let i = 0; i < 3; i++) await door.control();
    const limitMs = Math.max(SLOW_FLOOR_MS, ((performance.now() - started) / 3) * SLOW_FACTOR);
    for (const c of cases) {
      if (!c.layers.includes(door.layer)) {
        results.push({ id: c.id, layer: door.layer, category: c.category, verdict: 'not-claimed', evidence: `the ${door.layer} layer does not claim this class (DESIGN.md: the trust boundary); not run` });
        continue;
      }
      results.push(await judge(target, door, c, expected, limitMs));
    }
  }
  return { total: results.filter((r) => r.verdict !== 'not-claimed').length, leaked: results.filter((r) => r.verdict === 'leaked').length, cases: results };
}

async function judge(target: Target, door: Door, c: RedteamCase, expected: string, limitMs: number): Promise<CaseResult> {
  const result = (verdict: Verdict, evidence: string): CaseResult => ({ id: c.id, layer: door.layer, category: c.category, verdict, evidence });
  const before = await target.checksumB();
  const fill = (key: string) => fillCase(c, target, key);
  let reply: Reply;
  let control: { seen: string; ms: number } | { error: string };
  try {
    if (c.oracle) {
      const existing = await door.attack(fill(target.keys.existing));
      const missing = await door.attack(fill(target.keys.missing));
      const a = keyed(existing.shape, target.keys.existing);
      const b = keyed(missing.shape, target.keys.missing);
      if (a !== b) return result('leaked', `undetectable: the replies differ for an existing and a missing key of B (${brief(a)} vs ${brief(b)})`);
      reply = existing;
      control = await timed(door);
    } else {
      // B's request goes out while the attack runs: starvation shows up as B's wait.
      const running = door.attack(fill(target.keys.existing));
      await new Promise((r) => setTimeout(r, 25));
      [control, reply] = await Promise.all([timed(door), running]);
    }
  } catch (error) {
    return result('leaked', `unharmed: the ${door.layer} layer failed outright (${brief(String((error as Error)?.message ?? error))})`);
  }
  const markers = target.markers.filter((m) => reply.text.includes(m));
  if (markers.length > 0) return result('leaked', `unread: ${markers.length} of B's markers in the reply (${brief(reply.text)})`);
  if (c.expect === 'refused' && reply.answered) return result('leaked', `refused expected, but the layer answered: ${brief(reply.text)}`);
  const after = await target.checksumB();
  if (after !== before) return result('leaked', "unchanged: B's rows changed");
  if ('error' in control) return result('leaked', `unharmed: B's own request failed during the attack (${brief(control.error)})`);
  if (control.seen !== expected) return result('leaked', `unharmed: B saw ${brief(control.seen)} instead of ${brief(expected)}`);
  if (control.ms > limitMs) return result('leaked', `unharmed: B waited ${Math.round(control.ms)} ms during the attack (limit ${Math.round(limitMs)} ms)`);
  return result('held', `${reply.answered ? 'answered without B\'s data' : 'refused or failed'}: ${brief(reply.text)}`);
}

async function timed(door: Door): Promise<{ seen: string; ms: number } | { error: string }> {
  const started = performance.now();
  try {
    const seen = await door.control();
    return { seen, ms: performance.now() - started };
  } catch (error) {
    return { error: String((error as Error)?.message ?? error) };
  }
}

function fillCase(c: RedteamCase, target: Target, key: string): RedteamCase {
  const fill = (text: string) =>
    text.replaceAll('{{A}}', target.tenants.a).replaceAll('{{B}}', target.tenants.b).replaceAll('{{B_KEY}}', key).replaceAll('{{FORGED}}', target.forged);
  return {
    ...c,
    sql: fill(c.sql),
    params: c.params.map((p) => (typeof p === 'string' ? fill(p) : p)),
    ...(c.table ? { table: fill(c.table) } : {}),
  };
}

/** The reply with the key written as {{B_KEY}}, where it stands alone (not inside "400" for key 4). */
function keyed(text: string, key: string): string {
  const escaped = key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return text.replace(new RegExp(`(?<![0-9A-Za-z])${escaped}(?![0-9A-Za-z])`, 'g'), '{{B_KEY}}');
}

function brief(text: string): string {
  const one = text.replace(/\s+/g, ' ').trim();
  return one.length > 160 ? `${one.slice(0, 160)}…` : one;
}

/** Counts per layer and verdict, for the text report. */
export function formatResult(result: RedteamResult): string {
  const lines: string[] = [];
  const layers = [...new Set(result.cases.map((c) => c.layer))];
  const categories = [...new Set(result.cases.map((c) => c.category))].sort();
  lines.push(`tenantfence redteam: ${result.total} attacks run, ${result.leaked} leaked`, '');
  lines.push(`  ${'category'.padEnd(28)} ${layers.map((l) => l.padEnd(16)).join(' ')}`);
  for (const category of categories) {
    const cells = layers.map((layer) => {
      const mine = result.cases.filter((c) => c.category === category && c.layer === layer);
      const run = mine.filter((c) => c.verdict !== 'not-claimed');
      const leaked = run.filter((c) => c.verdict === 'leaked').length;
      return (run.length === 0 ? 'not claimed' : `${run.length - leaked}/${run.length} held`).padEnd(16);
    });
    lines.push(`  ${category.padEnd(28)} ${cells.join(' ')}`);
  }
  const leaks = result.cases.filter((c) => c.verdict === 'leaked');
  if (leaks.length > 0) {
    lines.push('', 'Leaks:');
    for (const l of leaks) lines.push(`  ${l.layer} ${l.id}: ${l.evidence}`);
  }
  return `${lines.join('\n')}\n`;
}
